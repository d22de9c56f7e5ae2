"""redis-py against kvserver, over RESP2 and RESP3: the client library works unchanged.

Usage: python3 tests/clients/redis_py_smoke.py PORT   (run by .ci/run against a fresh kvserver)
"""
import sys
import time

import redis


def check(protocol: int, port: int) -> None:
    r = redis.Redis(host="127.0.0.1", port=port, protocol=protocol, decode_responses=True)
    assert r.ping() is True
    r.flushdb()
    assert r.set("py:greeting", "hello") is True
    assert r.get("py:greeting") == "hello"
    assert r.set("py:greeting", "x", nx=True) is None
    assert r.incr("py:counter") == 1
    assert r.incrby("py:counter", 41) == 42
    assert r.incrbyfloat("py:float", 1.5) == 1.5
    assert r.mset({"py:a": "1", "py:b": "2"}) is True
    assert r.mget("py:a", "py:b", "py:missing") == ["1", "2", None]
    assert r.set("py:ttl", "v", px=50) is True
    assert 0 < r.pttl("py:ttl") <= 50
    deadline = time.time() + 2
    while r.exists("py:ttl") and time.time() < deadline:
        time.sleep(0.01)
    assert r.get("py:ttl") is None
    assert r.expire("py:a", 100) is True
    assert r.ttl("py:a") == 100
    assert sorted(r.keys("py:[ab]")) == ["py:a", "py:b"]
    assert sorted(r.scan_iter(match="py:*")) == sorted(r.keys("py:*"))
    assert r.rename("py:b", "py:c") is True
    assert r.type("py:c") == "string"
    assert r.delete("py:a", "py:c", "py:none") == 2
    info = r.info()
    assert info["redis_version"].startswith("7.")
    assert info["connected_clients"] >= 1
    assert "keyspace_hits" in r.info("stats")
    assert r.config_get("maxclients")["maxclients"] == "10000"
    assert r.client_setname("pysmoke") is True
    assert r.client_getname() == "pysmoke"
    try:
        r.execute_command("NOSUCHCOMMAND", "a")
        raise AssertionError("unknown command accepted")
    except redis.ResponseError as err:
        assert str(err).startswith("unknown command 'NOSUCHCOMMAND'"), err
    try:
        r.incr("py:greeting")
        raise AssertionError("INCR on a non-integer accepted")
    except redis.ResponseError as err:
        assert str(err) == "value is not an integer or out of range", err
    pipe = r.pipeline(transaction=False)
    for i in range(100):
        pipe.set(f"py:p{i}", i)
    for i in range(100):
        pipe.get(f"py:p{i}")
    replies = pipe.execute()
    assert replies[:100] == [True] * 100
    assert replies[100:] == [str(i) for i in range(100)]
    check_collections(r)
    check_transactions(r)
    r.close()


def check_collections(r: "redis.Redis") -> None:
    """Lists, hashes, sets and sorted sets through redis-py's own reply parsing (maps, sets
    and doubles in RESP3)."""
    assert r.rpush("py:l", "a", "b", "c") == 3
    assert r.lrange("py:l", 0, -1) == ["a", "b", "c"]
    assert r.lpop("py:l", 2) == ["a", "b"]
    popped = r.blpop(["py:none", "py:l"], timeout=1)
    assert popped is not None and tuple(popped) == ("py:l", "c"), popped
    assert r.blpop(["py:none"], timeout=0.05) is None
    assert r.hset("py:h", mapping={"f": "1", "g": "2"}) == 2
    assert r.hgetall("py:h") == {"f": "1", "g": "2"}
    assert r.hincrby("py:h", "f", 5) == 6
    assert r.sadd("py:s", "x", "y", "1") == 3
    assert r.smembers("py:s") == {"x", "y", "1"}
    assert r.sismember("py:s", "x") in (True, 1)
    assert r.zadd("py:z", {"m1": 1.5, "m2": 2.5}) == 2
    assert r.zscore("py:z", "m1") == 1.5
    ranged = r.zrange("py:z", 0, -1, withscores=True)
    assert [tuple(pair) for pair in ranged] == [("m1", 1.5), ("m2", 2.5)], ranged
    assert r.zincrby("py:z", 1, "m1") == 2.5
    # RESP2: [(member, score)]; RESP3 without a count: the flat pair, as Redis 7 replies.
    popped = r.zpopmin("py:z")
    flat = list(popped[0]) if isinstance(popped[0], (list, tuple)) else list(popped)
    assert flat == ["m1", 2.5], popped
    assert r.object("encoding", "py:h") == "listpack"
    try:
        r.lpush("py:h", "x")
        raise AssertionError("LPUSH on a hash accepted")
    except redis.ResponseError as err:
        assert str(err).startswith("WRONGTYPE"), err
    assert r.delete("py:l", "py:h", "py:s", "py:z") == 3


def check_transactions(r: "redis.Redis") -> None:
    """redis-py's pipeline() wraps its commands in MULTI/EXEC; r.transaction() retries a
    WATCH/GET/MULTI/SET/EXEC check-and-set until it goes through."""
    with r.pipeline() as pipe:
        pipe.set("py:tx:a", "1").incr("py:tx:a").rpush("py:tx:l", "x").get("py:tx:a")
        assert pipe.execute() == [True, 2, 1, "2"]

    def double(pipe: "redis.client.Pipeline") -> None:
        value = int(pipe.get("py:tx:a"))
        pipe.multi()
        pipe.set("py:tx:a", value * 2)

    r.transaction(double, "py:tx:a")
    assert r.get("py:tx:a") == "4"
    # A watched key changed by another client: EXEC returns null, redis-py raises.
    with r.pipeline() as pipe:
        pipe.watch("py:tx:a")
        r.set("py:tx:a", "changed")
        pipe.multi()
        pipe.set("py:tx:a", "mine")
        try:
            pipe.execute()
            raise AssertionError("EXEC ran although the watched key changed")
        except redis.WatchError:
            pass
    assert r.get("py:tx:a") == "changed"
    assert r.delete("py:tx:a", "py:tx:l") == 2
    # register_script: EVALSHA, falling back to SCRIPT LOAD on NOSCRIPT.
    incr = r.register_script(
        "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) redis.call('EXPIRE', KEYS[1], 100) return v")
    assert incr(keys=["py:sc"], args=[5]) == 5
    assert incr(keys=["py:sc"], args=[5]) == 10
    assert r.ttl("py:sc") == 100
    assert r.delete("py:sc") == 1


def main() -> None:
    port = int(sys.argv[1])
    for protocol in (2, 3):
        check(protocol, port)
        print(f"redis-py {redis.__version__} RESP{protocol}: ok")


if __name__ == "__main__":
    main()
