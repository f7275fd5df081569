-- POST /api/v1/orders: one unit of $BENCH_PRODUCT as $BENCH_TOKEN.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.body = string.format('{"items":[{"product_id":"%s","quantity":1}]}', os.getenv("BENCH_PRODUCT"))
