//! The collection part of the crash model: every writer also owns a few keys of each
//! collection type (`w<w>:h<i>` hashes, `w<w>:l<i>` lists, `w<w>:s<i>` sets, `w<w>:z<i>`
//! sorted sets), changed by the family's write commands, sometimes by hundreds of elements
//! at once so that snapshots and rewrites meet large values.
//!
//! The model keeps a collection as a canonical string in [`Val::data`](super::Val), so the
//! rest of the harness (prefix matching, diffs) compares collections as it compares strings:
//! a hash as `field=value` pairs sorted by field, a set as its sorted members, a list as its
//! elements in order, a sorted set as `member=score` pairs in (score, member) order, each
//! joined by `,`. Elements and fields are made from writer tags (`r3w1n42`), which contain
//! neither `,` nor `=`. Scores are integers, so Redis prints them as integers.

use std::collections::{BTreeMap, BTreeSet};

use super::{Rng, State, Val};
use crate::util::*;

/// Keys of each collection type per writer.
pub const COLLECTION_KEYS: usize = 2;

/// A collection type of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Hash,
    List,
    Set,
    ZSet,
}

/// The collection types the writers exercise.
pub const KINDS: &[Kind] = &[Kind::Hash, Kind::List, Kind::Set, Kind::ZSet];

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Hash => 'h',
            Kind::List => 'l',
            Kind::Set => 's',
            Kind::ZSet => 'z',
        }
    }

    /// The kind of a collection key, from its name.
    pub fn of_key(key: &str) -> Option<Kind> {
        let (_, name) = key.split_once(':')?;
        let kind = match name.chars().next()? {
            'h' => Kind::Hash,
            'l' => Kind::List,
            's' => Kind::Set,
            'z' => Kind::ZSet,
            _ => return None,
        };
        name[1..].parse::<usize>().ok()?;
        Some(kind)
    }

    /// The command that reads a whole collection of this kind.
    pub fn read_args(self, key: &str) -> Vec<String> {
        let args: &[&str] = match self {
            Kind::Hash => &["HGETALL", key],
            Kind::List => &["LRANGE", key, "0", "-1"],
            Kind::Set => &["SMEMBERS", key],
            Kind::ZSet => &["ZRANGE", key, "0", "-1", "WITHSCORES"],
        };
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    /// The canonical form of what [`Kind::read_args`] replied; `None` for an empty reply
    /// (the key does not exist: the server deletes emptied collections).
    pub fn canonical_from_reply(self, reply: Frame) -> Option<String> {
        let items: Vec<String> = array_items(reply).iter().map(text_of).collect();
        if items.is_empty() {
            return None;
        }
        Some(match self {
            Kind::Hash => {
                let pairs: BTreeMap<String, String> = items
                    .chunks(2)
                    .map(|pair| (pair[0].clone(), pair[1].clone()))
                    .collect();
                join_pairs(pairs.iter())
            }
            Kind::List => items.join(","),
            Kind::Set => items
                .into_iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(","),
            Kind::ZSet => {
                let pairs: Vec<(String, String)> = items
                    .chunks(2)
                    .map(|pair| (pair[0].clone(), pair[1].clone()))
                    .collect();
                join_pairs(pairs.iter().map(|(m, s)| (m, s)))
            }
        })
    }
}

fn join_pairs<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    pairs
        .map(|(a, b)| format!("{a}={b}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Collection key `i` of kind `kind` of writer `w`.
pub fn collection_key(w: usize, kind: Kind, i: usize) -> String {
    format!("w{w}:{}{i}", kind.letter())
}

/// Every collection key of writer `w`.
pub fn collection_keys(w: usize) -> Vec<String> {
    KINDS
        .iter()
        .flat_map(|&kind| (0..COLLECTION_KEYS).map(move |i| collection_key(w, kind, i)))
        .collect()
}

/// One write to a collection key, with its effect on the model.
#[derive(Clone, Debug)]
pub enum CollOp {
    HSet {
        key: String,
        pairs: Vec<(String, String)>,
    },
    HDel {
        key: String,
        fields: Vec<String>,
    },
    HIncrBy {
        key: String,
        field: String,
        by: i64,
    },
    Push {
        key: String,
        left: bool,
        elements: Vec<String>,
    },
    Pop {
        key: String,
        left: bool,
        count: Option<usize>,
    },
    LSet {
        key: String,
        index: i64,
        element: String,
    },
    LTrim {
        key: String,
        start: i64,
        stop: i64,
    },
    LRem {
        key: String,
        count: i64,
        element: String,
    },
    SAdd {
        key: String,
        members: Vec<String>,
    },
    SRem {
        key: String,
        members: Vec<String>,
    },
    SMove {
        src: String,
        dst: String,
        member: String,
    },
    ZAdd {
        key: String,
        pairs: Vec<(i64, String)>,
    },
    ZIncrBy {
        key: String,
        by: i64,
        member: String,
    },
    ZRem {
        key: String,
        members: Vec<String>,
    },
    ZPopMin {
        key: String,
        count: usize,
    },
    /// RENAME between two keys of the same kind.
    Rename {
        src: String,
        dst: String,
    },
}

/// Parsed model collections.
fn hash_of(state: &State, key: &str) -> BTreeMap<String, String> {
    state.get(key).map_or_else(BTreeMap::new, |val| {
        val.data
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(f, v)| (f.to_owned(), v.to_owned()))
            .collect()
    })
}

fn list_of(state: &State, key: &str) -> Vec<String> {
    state.get(key).map_or_else(Vec::new, |val| {
        val.data.split(',').map(str::to_owned).collect()
    })
}

fn set_of(state: &State, key: &str) -> BTreeSet<String> {
    list_of(state, key).into_iter().collect()
}

/// A sorted set as (score, member) in order.
fn zset_of(state: &State, key: &str) -> BTreeSet<(i64, String)> {
    state.get(key).map_or_else(BTreeSet::new, |val| {
        val.data
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(m, s)| (s.parse().expect("model score"), m.to_owned()))
            .collect()
    })
}

/// Stores a collection's canonical form, or deletes the key when it is empty (keeping
/// whether it had a TTL while it exists).
fn store(state: &mut State, key: &str, canonical: String) {
    if canonical.is_empty() {
        state.remove(key);
        return;
    }
    let ttl = state.get(key).is_some_and(|v| v.ttl);
    state.insert(
        key.to_owned(),
        Val {
            data: canonical,
            ttl,
        },
    );
}

fn store_hash(state: &mut State, key: &str, hash: &BTreeMap<String, String>) {
    store(state, key, join_pairs(hash.iter()));
}

fn store_list(state: &mut State, key: &str, list: &[String]) {
    store(state, key, list.join(","));
}

fn store_set(state: &mut State, key: &str, set: &BTreeSet<String>) {
    store(
        state,
        key,
        set.iter().cloned().collect::<Vec<_>>().join(","),
    );
}

fn store_zset(state: &mut State, key: &str, zset: &BTreeSet<(i64, String)>) {
    let text = zset
        .iter()
        .map(|(s, m)| format!("{m}={s}"))
        .collect::<Vec<_>>()
        .join(",");
    store(state, key, text);
}

/// Resolves a Redis list index against a length (negative from the end).
fn resolve(index: i64, len: usize) -> i64 {
    if index < 0 {
        index + len as i64
    } else {
        index
    }
}

impl CollOp {
    pub fn args(&self) -> Vec<String> {
        let s = |text: &str| text.to_owned();
        let mut args = match self {
            CollOp::HSet { key, pairs } => {
                let mut args = vec![s("HSET"), key.clone()];
                args.extend(pairs.iter().flat_map(|(f, v)| [f.clone(), v.clone()]));
                args
            }
            CollOp::HDel { key, fields } => {
                let mut args = vec![s("HDEL"), key.clone()];
                args.extend(fields.iter().cloned());
                args
            }
            CollOp::HIncrBy { key, field, by } => {
                vec![s("HINCRBY"), key.clone(), field.clone(), by.to_string()]
            }
            CollOp::Push {
                key,
                left,
                elements,
            } => {
                let mut args = vec![s(if *left { "LPUSH" } else { "RPUSH" }), key.clone()];
                args.extend(elements.iter().cloned());
                args
            }
            CollOp::Pop { key, left, count } => {
                let mut args = vec![s(if *left { "LPOP" } else { "RPOP" }), key.clone()];
                args.extend(count.map(|c| c.to_string()));
                args
            }
            CollOp::LSet {
                key,
                index,
                element,
            } => vec![s("LSET"), key.clone(), index.to_string(), element.clone()],
            CollOp::LTrim { key, start, stop } => {
                vec![s("LTRIM"), key.clone(), start.to_string(), stop.to_string()]
            }
            CollOp::LRem {
                key,
                count,
                element,
            } => vec![s("LREM"), key.clone(), count.to_string(), element.clone()],
            CollOp::SAdd { key, members } => {
                let mut args = vec![s("SADD"), key.clone()];
                args.extend(members.iter().cloned());
                args
            }
            CollOp::SRem { key, members } => {
                let mut args = vec![s("SREM"), key.clone()];
                args.extend(members.iter().cloned());
                args
            }
            CollOp::SMove { src, dst, member } => {
                vec![s("SMOVE"), src.clone(), dst.clone(), member.clone()]
            }
            CollOp::ZAdd { key, pairs } => {
                let mut args = vec![s("ZADD"), key.clone()];
                args.extend(pairs.iter().flat_map(|(sc, m)| [sc.to_string(), m.clone()]));
                args
            }
            CollOp::ZIncrBy { key, by, member } => {
                vec![s("ZINCRBY"), key.clone(), by.to_string(), member.clone()]
            }
            CollOp::ZRem { key, members } => {
                let mut args = vec![s("ZREM"), key.clone()];
                args.extend(members.iter().cloned());
                args
            }
            CollOp::ZPopMin { key, count } => {
                vec![s("ZPOPMIN"), key.clone(), count.to_string()]
            }
            CollOp::Rename { src, dst } => vec![s("RENAME"), src.clone(), dst.clone()],
        };
        args.shrink_to_fit();
        args
    }

    /// The model keys the operation may change.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            CollOp::SMove { src, dst, .. } | CollOp::Rename { src, dst } => {
                vec![src.as_str(), dst.as_str()]
            }
            CollOp::HSet { key, .. }
            | CollOp::HDel { key, .. }
            | CollOp::HIncrBy { key, .. }
            | CollOp::Push { key, .. }
            | CollOp::Pop { key, .. }
            | CollOp::LSet { key, .. }
            | CollOp::LTrim { key, .. }
            | CollOp::LRem { key, .. }
            | CollOp::SAdd { key, .. }
            | CollOp::SRem { key, .. }
            | CollOp::ZAdd { key, .. }
            | CollOp::ZIncrBy { key, .. }
            | CollOp::ZRem { key, .. }
            | CollOp::ZPopMin { key, .. } => vec![key.as_str()],
        }
    }

    /// Applies the operation to `state`; returns the reply Redis gives (RESP2).
    pub fn apply(&self, state: &mut State) -> Frame {
        match self {
            CollOp::HSet { key, pairs } => {
                let mut hash = hash_of(state, key);
                let mut added = 0;
                for (f, v) in pairs {
                    if hash.insert(f.clone(), v.clone()).is_none() {
                        added += 1;
                    }
                }
                store_hash(state, key, &hash);
                int(added)
            }
            CollOp::HDel { key, fields } => {
                let mut hash = hash_of(state, key);
                let removed = fields.iter().filter(|f| hash.remove(*f).is_some()).count();
                store_hash(state, key, &hash);
                int(removed as i64)
            }
            CollOp::HIncrBy { key, field, by } => {
                let mut hash = hash_of(state, key);
                let value = hash.entry(field.clone()).or_insert_with(|| "0".to_owned());
                let new = value.parse::<i64>().expect("model counter field") + by;
                *value = new.to_string();
                store_hash(state, key, &hash);
                int(new)
            }
            CollOp::Push {
                key,
                left,
                elements,
            } => {
                let mut list = list_of(state, key);
                for element in elements {
                    if *left {
                        list.insert(0, element.clone());
                    } else {
                        list.push(element.clone());
                    }
                }
                store_list(state, key, &list);
                int(list.len() as i64)
            }
            CollOp::Pop { key, left, count } => {
                let mut list = list_of(state, key);
                if list.is_empty() {
                    return match count {
                        // Redis 7: LPOP key count on a missing key is a null array.
                        Some(_) => Frame::Null,
                        None => nil(),
                    };
                }
                let take = count.unwrap_or(1).min(list.len());
                let popped: Vec<String> = if *left {
                    list.drain(..take).collect()
                } else {
                    let start = list.len() - take;
                    list.drain(start..).rev().collect()
                };
                store_list(state, key, &list);
                match count {
                    Some(_) => Frame::Array(popped.into_iter().map(bulk).collect()),
                    None => bulk(&popped[0]),
                }
            }
            CollOp::LSet {
                key,
                index,
                element,
            } => {
                let mut list = list_of(state, key);
                if list.is_empty() {
                    return err("ERR no such key");
                }
                let at = resolve(*index, list.len());
                if at < 0 || at as usize >= list.len() {
                    return err("ERR index out of range");
                }
                list[at as usize] = element.clone();
                store_list(state, key, &list);
                ok()
            }
            CollOp::LTrim { key, start, stop } => {
                let list = list_of(state, key);
                let len = list.len() as i64;
                let start = resolve(*start, list.len()).max(0);
                let stop = resolve(*stop, list.len()).min(len - 1);
                let kept: Vec<String> = if start > stop || start >= len {
                    Vec::new()
                } else {
                    list[start as usize..=stop as usize].to_vec()
                };
                store_list(state, key, &kept);
                ok()
            }
            CollOp::LRem {
                key,
                count,
                element,
            } => {
                let list = list_of(state, key);
                let limit = if *count == 0 {
                    usize::MAX
                } else {
                    count.unsigned_abs() as usize
                };
                let mut removed = 0;
                let mut kept: Vec<String> = Vec::with_capacity(list.len());
                if *count >= 0 {
                    for item in list {
                        if item == *element && removed < limit {
                            removed += 1;
                        } else {
                            kept.push(item);
                        }
                    }
                } else {
                    for item in list.into_iter().rev() {
                        if item == *element && removed < limit {
                            removed += 1;
                        } else {
                            kept.push(item);
                        }
                    }
                    kept.reverse();
                }
                store_list(state, key, &kept);
                int(removed as i64)
            }
            CollOp::SAdd { key, members } => {
                let mut set = set_of(state, key);
                let added = members.iter().filter(|m| set.insert((*m).clone())).count();
                store_set(state, key, &set);
                int(added as i64)
            }
            CollOp::SRem { key, members } => {
                let mut set = set_of(state, key);
                let removed = members.iter().filter(|m| set.remove(*m)).count();
                store_set(state, key, &set);
                int(removed as i64)
            }
            CollOp::SMove { src, dst, member } => {
                let mut from = set_of(state, src);
                if !from.remove(member) {
                    return int(0);
                }
                if src == dst {
                    // Nothing moves: the key keeps its members and its TTL, even when the
                    // member is its only one (removing and re-adding it would drop the TTL).
                    return int(1);
                }
                store_set(state, src, &from);
                let mut to = set_of(state, dst);
                to.insert(member.clone());
                store_set(state, dst, &to);
                int(1)
            }
            CollOp::ZAdd { key, pairs } => {
                let mut zset = zset_of(state, key);
                let mut added = 0;
                for (score, member) in pairs {
                    let old = zset.iter().find(|(_, m)| m == member).cloned();
                    match old {
                        Some(old) => {
                            zset.remove(&old);
                        }
                        None => added += 1,
                    }
                    zset.insert((*score, member.clone()));
                }
                store_zset(state, key, &zset);
                int(added)
            }
            CollOp::ZIncrBy { key, by, member } => {
                let mut zset = zset_of(state, key);
                let old = zset.iter().find(|(_, m)| m == member).cloned();
                let score = old.as_ref().map_or(0, |(s, _)| *s) + by;
                if let Some(old) = old {
                    zset.remove(&old);
                }
                zset.insert((score, member.clone()));
                store_zset(state, key, &zset);
                bulk(score.to_string())
            }
            CollOp::ZRem { key, members } => {
                let mut zset = zset_of(state, key);
                let mut removed = 0;
                for member in members {
                    if let Some(old) = zset.iter().find(|(_, m)| m == member).cloned() {
                        zset.remove(&old);
                        removed += 1;
                    }
                }
                store_zset(state, key, &zset);
                int(removed)
            }
            CollOp::ZPopMin { key, count } => {
                let mut zset = zset_of(state, key);
                let mut reply = Vec::new();
                for _ in 0..*count {
                    let Some(first) = zset.pop_first() else { break };
                    reply.push(bulk(&first.1));
                    reply.push(bulk(first.0.to_string()));
                }
                store_zset(state, key, &zset);
                Frame::Array(reply)
            }
            CollOp::Rename { src, dst } => match state.remove(src) {
                Some(val) => {
                    state.insert(dst.clone(), val);
                    ok()
                }
                None => err("ERR no such key"),
            },
        }
    }
}

/// A random write to one of writer `w`'s collection keys; `tag` makes what it writes unique.
/// About one in twenty writes hundreds of elements at once.
pub fn random_collection_op(rng: &mut Rng, w: usize, tag: &str) -> CollOp {
    let kind = KINDS[rng.index(KINDS.len())];
    let key = |rng: &mut Rng| collection_key(w, kind, rng.index(COLLECTION_KEYS));
    let many = if rng.below(20) == 0 {
        rng.between(200, 600) as usize
    } else {
        rng.between(1, 4) as usize
    };
    // Fields and members come from a small pool, so that writes overlap and removals hit.
    let pooled = |rng: &mut Rng| format!("e{}", rng.below(40));
    let fresh = |j: usize| format!("e{tag}.{j}");
    match (kind, rng.below(10)) {
        (_, 9) => {
            let src = key(rng);
            let dst = collection_key(w, kind, rng.index(COLLECTION_KEYS));
            CollOp::Rename { src, dst }
        }
        (Kind::Hash, 0..=4) => CollOp::HSet {
            key: key(rng),
            pairs: (0..many)
                .map(|j| {
                    let field = if many > 4 { fresh(j) } else { pooled(rng) };
                    (field, format!("v{tag}"))
                })
                .collect(),
        },
        (Kind::Hash, 5..=6) => CollOp::HDel {
            key: key(rng),
            fields: (0..rng.between(1, 3)).map(|_| pooled(rng)).collect(),
        },
        (Kind::Hash, _) => CollOp::HIncrBy {
            key: key(rng),
            field: format!("n{}", rng.below(3)),
            by: rng.between(0, 200) as i64 - 100,
        },
        (Kind::List, 0..=3) => CollOp::Push {
            key: key(rng),
            left: rng.below(2) == 0,
            elements: (0..many).map(|j| format!("{}{j}", pooled(rng))).collect(),
        },
        (Kind::List, 4..=5) => CollOp::Pop {
            key: key(rng),
            left: rng.below(2) == 0,
            count: (rng.below(2) == 0).then(|| rng.between(1, 5) as usize),
        },
        (Kind::List, 6) => CollOp::LSet {
            key: key(rng),
            index: rng.between(0, 20) as i64 - 10,
            element: format!("set{tag}"),
        },
        (Kind::List, 7) => CollOp::LTrim {
            key: key(rng),
            start: rng.between(0, 3) as i64,
            stop: -(rng.between(1, 3) as i64),
        },
        (Kind::List, _) => CollOp::LRem {
            key: key(rng),
            count: rng.between(0, 4) as i64 - 2,
            element: format!("{}0", pooled(rng)),
        },
        (Kind::Set, 0..=4) => CollOp::SAdd {
            key: key(rng),
            members: (0..many)
                .map(|j| if many > 4 { fresh(j) } else { pooled(rng) })
                .collect(),
        },
        (Kind::Set, 5..=6) => CollOp::SRem {
            key: key(rng),
            members: (0..rng.between(1, 3)).map(|_| pooled(rng)).collect(),
        },
        (Kind::Set, _) => CollOp::SMove {
            src: key(rng),
            dst: key(rng),
            member: pooled(rng),
        },
        (Kind::ZSet, 0..=4) => CollOp::ZAdd {
            key: key(rng),
            pairs: (0..many)
                .map(|j| {
                    let member = if many > 4 { fresh(j) } else { pooled(rng) };
                    (rng.between(0, 1000) as i64 - 500, member)
                })
                .collect(),
        },
        (Kind::ZSet, 5) => CollOp::ZIncrBy {
            key: key(rng),
            by: rng.between(0, 20) as i64 - 10,
            member: pooled(rng),
        },
        (Kind::ZSet, 6..=7) => CollOp::ZRem {
            key: key(rng),
            members: (0..rng.between(1, 3)).map(|_| pooled(rng)).collect(),
        },
        (Kind::ZSet, _) => CollOp::ZPopMin {
            key: key(rng),
            count: rng.between(1, 3) as usize,
        },
    }
}
