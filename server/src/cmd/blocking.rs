//! Blocking commands (issue 16): BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//! BZPOPMAX and BZMPOP, and the registry of clients blocked on keys.
