//! Where a command's keys are: Redis 7 key specs, and the legacy first/last/step triple that
//! `COMMAND INFO` derives from them.
//!
//! A key spec finds its keys in two steps: `begin_search` finds where they start (a fixed
//! index, or the argument after a keyword), `find_keys` says how many follow (a range, or a
//! count read from an argument). Positions count from 0, the command name.

use crate::Argv;

use super::bits::KeyFlags;

/// One key spec, as `COMMAND INFO` reports it in its eighth field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// What the command does with these keys.
    pub flags: KeyFlags,
    /// Where the keys start.
    pub begin_search: BeginSearch,
    /// Which arguments from there are keys.
    pub find_keys: FindKeys,
}

/// The first step of a key spec: where the keys start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginSearch {
    /// At this argument position.
    Index(i32),
    /// After `keyword`, searched from `start_from` (negative: from the end, backwards).
    Keyword {
        /// The token before the keys (`STREAMS`).
        keyword: &'static str,
        /// Where the search starts.
        start_from: i32,
    },
}

/// The second step of a key spec: which arguments from the start are keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindKeys {
    /// Keys up to `last_key` (relative to the start; negative: from the end), every
    /// `key_step`; `limit` > 1 keeps only that fraction of the range (Redis's XREAD trick).
    Range {
        /// Last key, relative to the first (0: the first key only; -1: the last argument).
        last_key: i32,
        /// Distance between keys (2 for `key value` pairs).
        key_step: i32,
        /// 0 or 1: the whole range; n: the first 1/n of it.
        limit: i32,
    },
    /// The number of keys is an argument (`numkeys`).
    KeyNum {
        /// Position of the count, relative to the start.
        key_num_index: i32,
        /// Position of the first key, relative to the start.
        first_key: i32,
        /// Distance between keys.
        key_step: i32,
    },
}

impl KeySpec {
    /// Keys from argument `index` to `last_key` (relative to `index`, negative from the end),
    /// every `key_step`: the only kind today's commands need.
    pub const fn range(flags: KeyFlags, index: i32, last_key: i32, key_step: i32) -> KeySpec {
        KeySpec {
            flags,
            begin_search: BeginSearch::Index(index),
            find_keys: FindKeys::Range {
                last_key,
                key_step,
                limit: 0,
            },
        }
    }

    /// Positions of this spec's keys in `args` (command name at 0), appended to `out`.
    /// Positions past the end are dropped.
    pub fn positions(&self, args: Argv<'_>, out: &mut impl FnMut(usize)) {
        let argc = args.len() as i64;
        let first = match self.begin_search {
            BeginSearch::Index(index) => i64::from(index),
            BeginSearch::Keyword {
                keyword,
                start_from,
            } => {
                let found = if start_from >= 0 {
                    (i64::from(start_from).max(1)..argc)
                        .find(|&i| args[i as usize].eq_ignore_ascii_case(keyword.as_bytes()))
                } else {
                    (1..=argc + i64::from(start_from))
                        .rev()
                        .find(|&i| args[i as usize].eq_ignore_ascii_case(keyword.as_bytes()))
                };
                match found {
                    Some(at) => at + 1,
                    None => return,
                }
            }
        };
        let (first, last, step) = match self.find_keys {
            FindKeys::Range {
                last_key,
                key_step,
                limit,
            } => {
                let mut last = if last_key >= 0 {
                    first + i64::from(last_key)
                } else {
                    argc + i64::from(last_key)
                };
                if limit > 1 {
                    last = first + (last - first) / i64::from(limit);
                }
                (first, last, key_step)
            }
            FindKeys::KeyNum {
                key_num_index,
                first_key,
                key_step,
            } => {
                let count = args
                    .get((first + i64::from(key_num_index)) as usize)
                    .and_then(|text| std::str::from_utf8(text).ok())
                    .and_then(|text| text.parse::<i64>().ok())
                    .filter(|&n| n > 0);
                let Some(count) = count else { return };
                let first = first + i64::from(first_key);
                (first, first + (count - 1) * i64::from(key_step), key_step)
            }
        };
        let step = usize::try_from(step).unwrap_or(1).max(1);
        let last = last.min(argc - 1);
        if first < 1 || last < first {
            return;
        }
        (first as usize..=last as usize).step_by(step).for_each(out);
    }
}

/// The keys of a command line `args` (name at 0) according to `specs`, in spec order.
pub fn key_positions(specs: &[KeySpec], args: Argv<'_>) -> Vec<usize> {
    let mut out = Vec::new();
    for_each_key_position(specs, args, |position| out.push(position));
    out
}

/// Calls `f` with each key position [`key_positions`] would return, without allocating.
pub fn for_each_key_position(specs: &[KeySpec], args: Argv<'_>, mut f: impl FnMut(usize)) {
    for spec in specs {
        spec.positions(args, &mut f);
    }
}

/// [`for_each_key_position`] for the keys a command changes: every spec but read-only ones
/// and names that are not keys (what client-side caching must invalidate).
pub fn for_each_written_key_position(specs: &[KeySpec], args: Argv<'_>, mut f: impl FnMut(usize)) {
    let written = specs.iter().filter(|spec| {
        !spec.flags.contains(KeyFlags::RO) && !spec.flags.contains(KeyFlags::NOT_KEY)
    });
    for spec in written {
        spec.positions(args, &mut f);
    }
}

/// The legacy `(first, last, step)` triple of `COMMAND INFO`, and whether the keys are
/// "movable" (not all described by it), computed as Redis's `populateCommandLegacyRangeSpec`
/// does: one index/range spec is copied; several are merged when they are adjacent plain
/// ranges.
pub const fn legacy_range(specs: &[KeySpec]) -> LegacyRange {
    let none = LegacyRange {
        first: 0,
        last: 0,
        step: 0,
        movable: false,
    };
    if specs.is_empty() {
        return none;
    }
    if let [only] = specs {
        if let (
            BeginSearch::Index(index),
            FindKeys::Range {
                last_key, key_step, ..
            },
        ) = (only.begin_search, only.find_keys)
        {
            return LegacyRange {
                first: index,
                last: if last_key < 0 {
                    last_key
                } else {
                    index + last_key
                },
                step: key_step,
                movable: only.flags.contains(KeyFlags::INCOMPLETE),
            };
        }
    }
    let mut first = i32::MAX;
    let mut last: i32 = 0;
    let mut previous_last: i32 = 0;
    let mut movable = false;
    let mut i = 0;
    while i < specs.len() {
        let spec = &specs[i];
        i += 1;
        let (
            BeginSearch::Index(index),
            FindKeys::Range {
                last_key, key_step, ..
            },
        ) = (spec.begin_search, spec.find_keys)
        else {
            movable = true;
            continue;
        };
        if key_step != 1 || (previous_last != 0 && previous_last != index - 1) {
            movable = true;
            continue;
        }
        if spec.flags.contains(KeyFlags::INCOMPLETE) {
            movable = true;
        }
        if index < first {
            first = index;
        }
        let absolute_last = if last_key >= 0 {
            index + last_key
        } else {
            last_key
        };
        // Redis compares as unsigned, so a negative (from the end) last key wins.
        if (absolute_last as u32) > (last as u32) {
            last = absolute_last;
        }
        previous_last = last;
    }
    if first == i32::MAX {
        return LegacyRange {
            movable: true,
            ..none
        };
    }
    LegacyRange {
        first,
        last,
        step: 1,
        movable,
    }
}

/// `COMMAND INFO`'s legacy key positions (all 0 for a command without keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyRange {
    /// Position of the first key.
    pub first: i32,
    /// Position of the last key (negative: from the end).
    pub last: i32,
    /// Distance between keys.
    pub step: i32,
    /// Some keys are not described by the triple (`movablekeys`).
    pub movable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OwnedArgv;

    const RW: KeyFlags = KeyFlags::RW;

    fn positions(specs: &[KeySpec], line: &str) -> Vec<usize> {
        let words: Vec<&str> = line.split(' ').collect();
        key_positions(specs, OwnedArgv::new(&words).argv())
    }

    #[test]
    fn ranges_follow_first_last_step() {
        let one = [KeySpec::range(RW, 1, 0, 1)];
        assert_eq!(positions(&one, "get k"), [1]);
        let all = [KeySpec::range(RW, 1, -1, 1)];
        assert_eq!(positions(&all, "del a b c"), [1, 2, 3]);
        let pairs = [KeySpec::range(RW, 1, -1, 2)];
        assert_eq!(positions(&pairs, "mset a 1 b 2"), [1, 3]);
        let two = [KeySpec::range(RW, 1, 1, 1)];
        assert_eq!(positions(&two, "copy a b REPLACE"), [1, 2]);
        assert_eq!(positions(&two, "copy a"), [1], "past the end is dropped");
        assert!(positions(&[], "ping x").is_empty());
    }

    #[test]
    fn keywords_and_key_counts() {
        let streams = [KeySpec {
            flags: KeyFlags::RO,
            begin_search: BeginSearch::Keyword {
                keyword: "STREAMS",
                start_from: 1,
            },
            find_keys: FindKeys::Range {
                last_key: -1,
                key_step: 1,
                limit: 2,
            },
        }];
        assert_eq!(positions(&streams, "xread COUNT 2 STREAMS a b 0 0"), [4, 5]);
        assert!(positions(&streams, "xread COUNT 2").is_empty());
        let eval = [KeySpec {
            flags: RW,
            begin_search: BeginSearch::Index(2),
            find_keys: FindKeys::KeyNum {
                key_num_index: 0,
                first_key: 1,
                key_step: 1,
            },
        }];
        assert_eq!(positions(&eval, "eval script 2 a b arg"), [3, 4]);
        assert!(positions(&eval, "eval script 0 arg").is_empty());
        assert!(positions(&eval, "eval script x").is_empty());
    }

    #[test]
    fn legacy_triple_as_redis_derives_it() {
        let triple = |specs: &[KeySpec]| {
            let r = legacy_range(specs);
            (r.first, r.last, r.step, r.movable)
        };
        assert_eq!(triple(&[]), (0, 0, 0, false));
        assert_eq!(triple(&[KeySpec::range(RW, 1, 0, 1)]), (1, 1, 1, false));
        assert_eq!(triple(&[KeySpec::range(RW, 1, -1, 2)]), (1, -1, 2, false));
        assert_eq!(triple(&[KeySpec::range(RW, 1, 1, 1)]), (1, 2, 1, false));
        // RENAME in Redis: two adjacent one-key specs.
        assert_eq!(
            triple(&[
                KeySpec::range(RW, 1, 0, 1),
                KeySpec::range(KeyFlags::OW, 2, 0, 1)
            ]),
            (1, 2, 1, false)
        );
        // GEORADIUS-like: a range plus a keyword spec.
        let keyword = KeySpec {
            flags: KeyFlags::OW,
            begin_search: BeginSearch::Keyword {
                keyword: "STORE",
                start_from: 6,
            },
            find_keys: FindKeys::Range {
                last_key: 0,
                key_step: 1,
                limit: 0,
            },
        };
        assert_eq!(
            triple(&[KeySpec::range(KeyFlags::RO, 1, 0, 1), keyword]),
            (1, 1, 1, true)
        );
        assert_eq!(triple(&[keyword]), (0, 0, 0, true));
    }
}
