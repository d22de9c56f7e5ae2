//! Set commands (issue 16): SADD, SREM, SMEMBERS, SINTER and the rest of the family.
