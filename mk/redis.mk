# md5pool inside Redis: the module in c_examples/redis/, its tests and benchmark.
#   make redis-module   build build/redis/md5pool_redis.so
#   make test-redis     the module in both completion modes, in a private redis-server
#   make bench-redis    PING latency beside MD5POOL.CHAIN / MD5POOL.LOCAL load (part of make bench)

REDIS_MODULE := $(BUILD)/redis/md5pool_redis.so
REDIS_SRC    := $(wildcard c_examples/redis/*.c)
REDIS_HDR    := $(wildcard c_examples/redis/*.h)

.PHONY: redis-module test-redis bench-redis
test: test-redis
bench: bench-redis

redis-module: $(REDIS_MODULE)

$(REDIS_MODULE): $(REDIS_SRC) $(REDIS_HDR) $(HEADER) | lib
	@mkdir -p $(dir $@)
	@# Replace by rename: a running redis-server may have the old one mapped.
	$(CC) $(CFLAGS) $(WARN) -D_GNU_SOURCE -fPIC -shared -fvisibility=hidden \
	  -Iinclude $(REDIS_SRC) -o $@.$$$$.tmp $(LINK_POOL) -lpthread && mv -f $@.$$$$.tmp $@

test-redis: lib $(REDIS_MODULE)
	python3 tests/redis/test_redis.py --module $(REDIS_MODULE) --lib $(SO_REAL)

bench-redis: lib $(REDIS_MODULE)
	python3 bench/redis_bench.py --module $(REDIS_MODULE) $(if $(filter-out 0,$(BENCH_QUICK)),--quick)
