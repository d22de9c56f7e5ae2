//! List commands (issue 16): LPUSH, RPUSH, LPOP, RPOP, LRANGE and the rest of the family.
