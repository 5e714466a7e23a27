"""The elf and flows the benchmarks run; worker processes import this module.

The mycelium is ``Mycelium()``: the suite points it at a fresh file per
measurement through ``BLUMYCELIUM_URL``.
"""

from blumycelium import MachineElf, Mycelium

mycelium = Mycelium()


class Bench(MachineElf):
    def task_noop(self, n: int) -> None:
        pass

    def task_next(self, value: int) -> ("value",):
        return {"value": value + 1}

    def task_produce(self, count: int) -> ("items",):
        return {"items": list(range(count))}

    def task_map(self, x: int) -> ("y",):
        return {"y": x * 2}

    def task_reduce(self, values: list) -> ("total",):
        return {"total": sum(values)}


bench = Bench("bench", mycelium)


@mycelium.flow
def noops(count: int):
    for n in range(count):
        bench.task_noop(n)


@mycelium.flow
def one_job(n: int):
    bench.task_noop(n)


@mycelium.flow
def chain(length: int):
    value = 0
    for _ in range(length):
        value = bench.task_next(value)["value"]
    return value


@mycelium.flow
def fan(count: int):
    items = bench.task_produce(count)["items"]
    return bench.task_reduce([bench.task_map(x)["y"] for x in items])["total"]


@mycelium.flow
def large(values: list):
    return bench.task_reduce(values)["total"]
