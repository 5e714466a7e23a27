"""Elf classes: task annotations checked at definition, plain calls, initialize."""

import pytest

from blumycelium import ElfDefinitionError, MachineElf, StoreError, TaskContractError


def test_a_missing_return_annotation_fails_when_the_class_is_defined():
    with pytest.raises(ElfDefinitionError) as caught:

        class Sender(MachineElf):
            def task_send(self, to_send):
                return {"value": to_send}

    message = str(caught.value)
    assert "Sender.task_send has no return annotation" in message
    assert "-> None" in message and "('value',)" in message


@pytest.mark.parametrize(
    ("annotation", "fragment"),
    [
        ('"value"', "single string; write it as a tuple: -> ('value',)"),
        ("42", "not one blumycelium understands"),
        ("()", "declares no keys"),
        ("(1, 2)", "result keys must be strings, found 1"),
        ('("a", "a")', "declared twice"),
    ],
)
def test_malformed_return_annotations_name_class_task_and_fix(annotation, fragment):
    namespace = {"MachineElf": MachineElf}
    source = (
        "class Odd(MachineElf):\n"
        "    def task_x(self) -> %s:\n"
        "        return None\n" % annotation
    )
    with pytest.raises(ElfDefinitionError, match="Odd.task_x") as caught:
        exec(compile(source, "<test>", "exec"), namespace)
    assert fragment in str(caught.value)


def test_static_methods_cannot_be_tasks():
    with pytest.raises(ElfDefinitionError, match="tasks must be plain methods"):

        class Odd(MachineElf):
            @staticmethod
            def task_x() -> None:
                return None


class Weigher(MachineElf):
    """Weighs things."""

    def initialize(self, unit):
        self.unit = unit

    def task_weigh(self, grams: int, precise: bool = False) -> {"weight": str}:
        return {"weight": "%d %s" % (grams, self.unit)}


def test_a_task_called_directly_is_a_plain_method_call():
    elf = Weigher("scale", None, "g")
    assert elf.task_weigh(12) == {"weight": "12 g"}
    assert elf.unit == "g"


def test_tasks_are_read_into_specs_with_parameters_and_result_keys():
    spec = Weigher.tasks()["task_weigh"]
    assert spec.names == ("grams", "precise")
    assert spec.result.keys == ("weight",)
    assert spec.bind((3,), {}) == {"grams": 3}
    assert spec.bind((), {"precise": True, "grams": 3}) == {"grams": 3, "precise": True}
    assert "return {" in spec.source and spec.revision


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((1, 2, 3), {}, "takes 2 arguments (grams, precise) but 3 were given"),
        ((), {"gram": 1}, "unknown keyword 'gram' (did you mean 'grams'?)"),
        ((1,), {"grams": 1}, "got two values for 'grams'"),
        ((), {}, "is missing the argument 'grams'"),
    ],
)
def test_binding_errors_name_the_task_and_the_fix(args, kwargs, message):
    with pytest.raises(TypeError, match="Weigher.task_weigh()") as caught:
        Weigher.tasks()["task_weigh"].bind(args, kwargs)
    assert message in str(caught.value)


def test_argument_annotations_are_checked_against_received_values():
    spec = Weigher.tasks()["task_weigh"]
    spec.check_argument("grams", 3)
    with pytest.raises(
        TaskContractError, match="parameter 'grams' expects int, got str '3'"
    ):
        spec.check_argument("grams", "3")


class Summer(MachineElf):
    def task_sum(self, *numbers: int, scale: float = 1.0, **tags: str) -> ("total",):
        return {"total": sum(numbers) * scale}


def test_star_arguments_are_checked_item_by_item():
    spec = Summer.tasks()["task_sum"]
    spec.check_argument("numbers", (1, 2, True))
    spec.check_argument("tags", {"a": "x"})
    spec.check_argument("scale", True)  # bool is an int, and an int fits float
    with pytest.raises(TaskContractError, match=r"'numbers\[1\]' expects int, got str"):
        spec.check_argument("numbers", (1, "2"))
    with pytest.raises(
        TaskContractError, match=r"\"tags\['b'\]\" expects str, got int"
    ):
        spec.check_argument("tags", {"a": "x", "b": 3})


def test_results_are_checked_against_declared_keys_and_types():
    spec = Weigher.tasks()["task_weigh"]
    assert spec.check_result({"weight": "1 g"}) == {"weight": "1 g"}
    with pytest.raises(TaskContractError, match="without the declared key 'weight'"):
        spec.check_result({"wait": 1})
    with pytest.raises(TaskContractError, match="undeclared key 'extra'"):
        spec.check_result({"weight": "1", "extra": 2})
    with pytest.raises(TaskContractError, match="key 'weight' expects str, got int"):
        spec.check_result({"weight": 1})
    with pytest.raises(TaskContractError, match="returned str 'x'; it must return"):
        spec.check_result("x")


def test_extra_constructor_arguments_need_an_initialize_method():
    class Plain(MachineElf):
        def task_x(self) -> None:
            return None

    with pytest.raises(ElfDefinitionError, match="defines no initialize"):
        Plain("p", None, "extra")


def test_an_elf_without_a_mycelium_says_so_when_asked_to_run_jobs():
    with pytest.raises(StoreError, match="has no mycelium"):
        Weigher("scale", None, "g").start_jobs()


def test_an_empty_uid_is_refused():
    with pytest.raises(ElfDefinitionError, match="uid must be a non-empty string"):
        Weigher("", None, "g")


def test_async_and_generator_tasks_are_refused_at_definition():
    with pytest.raises(ElfDefinitionError, match="async functions and generators"):

        class Async(MachineElf):
            async def task_x(self) -> None:
                return None

    with pytest.raises(ElfDefinitionError, match="Gen.task_x: tasks must be plain"):

        class Gen(MachineElf):
            def task_x(self) -> None:
                yield 1


_MISSING = object()


class Keeper(MachineElf):
    def task_get(self, key: str, default=_MISSING) -> ("found",):
        return {"found": default is _MISSING}


def test_omitted_defaults_are_the_workers_own(myc):
    keeper = Keeper("keeper", myc)

    @myc.flow
    def lookup(key):
        return keeper.task_get(key)["found"]

    assert Keeper.tasks()["task_get"].bind(("k",), {}) == {"key": "k"}
    run = lookup("k")
    keeper.start_jobs()
    assert run.result(timeout=5) is True


def test_revisions_do_not_depend_on_the_module_name():
    source = (
        "from blumycelium import MachineElf\n"
        "class Same(MachineElf):\n"
        "    def task_x(self) -> None:\n"
        "        return None\n"
    )
    first, second = {}, {"__name__": "__main__"}
    exec(compile(source, "<same>", "exec"), first)
    exec(compile(source, "<same>", "exec"), second)
    assert (
        first["Same"].tasks()["task_x"].revision
        == second["Same"].tasks()["task_x"].revision
    )


def test_a_uid_utf8_cannot_hold_is_refused_when_the_elf_is_built():
    with pytest.raises(ElfDefinitionError, match="uid must be a non-empty string"):
        Weigher("weigher\udc80")


def test_initialize_runs_on_every_construction_with_its_defaults():
    class Scale(MachineElf):
        def initialize(self, unit="g", precise=False):
            self.unit, self.precise = unit, precise

        def task_x(self) -> None:
            return None

    assert (Scale("s", None).unit, Scale("s", None).precise) == ("g", False)
    assert Scale("s", None, "kg", precise=True).precise is True
    with pytest.raises(ElfDefinitionError) as caught:
        Weigher("scale", None)
    message = str(caught.value)
    assert (
        "Weigher('scale', mycelium, ...): the arguments after the mycelium" in message
    )
    assert "go to initialize(unit), which cannot take them" in message
    assert "missing a required argument: 'unit'" in message
