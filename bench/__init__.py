"""The benchmark harness behind ``scripts/bench``.

One run starts a fresh, dedicated *bench* stack (gateway on :28080, its own databases,
Redis db and RabbitMQ vhost), prepares accounts through the real registration path,
drives the k6 scripts in ``k6/`` against it next to the machine's own ceilings (nginx
serving a static file, the seat-hold Lua script straight on Redis), samples every
service's memory and CPU, profiles the hot services with py-spy when a target is missed,
and writes ``docs/BENCHMARKS.md``.
"""
