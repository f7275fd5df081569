-- POST /api/v1/orders: one unit of a product drawn at random from the
-- comma-separated ids in $BENCH_PRODUCTS, as $BENCH_TOKEN — orders that rarely
-- wait on each other's row lock, unlike order.lua's single hot product.
local products = {}
for id in string.gmatch(os.getenv("BENCH_PRODUCTS"), "[^,]+") do
  products[#products + 1] = id
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")

-- Each wrk thread has its own Lua state: seed each differently.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
end

function request()
  local id = products[math.random(#products)]
  return wrk.format(nil, nil, nil, string.format('{"items":[{"product_id":"%s","quantity":1}]}', id))
end
