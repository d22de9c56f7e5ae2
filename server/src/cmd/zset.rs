//! Sorted-set commands (issue 16): ZADD, ZRANGE, ZRANK, ZPOPMIN and the rest of the family.
