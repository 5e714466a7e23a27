"""The list demo of the original blumycelium, on the embedded mycelium.

Results are used like any Python value: nested inside lists and tuples,
repeated, upper-cased, doubled. Each of those expressions is compiled into
an expression node that the printer's worker evaluates just before its task
runs; the containers themselves are stored with references to the sender's
results inside.

Run it with ``python demos/lists.py``.
"""

import time

from blumycelium import MachineElf, Mycelium


class PrinterElf(MachineElf):
    """Prints every item of a list."""

    def task_print_it(self, to_print_lst) -> None:
        for to_print in to_print_lst:
            print(">>> Machine >>> Elf >>> Printer: '%s'" % to_print)


class SenderElf(MachineElf):
    """Sends a value on, unchanged."""

    def task_send(self, to_send) -> ("value",):
        return {"value": to_send}


mycelium = Mycelium()
printer = PrinterElf("The Elf Printer", mycelium)
printer2 = PrinterElf("The Elf Printer2", mycelium)
sender = SenderElf("The Elf Sender", mycelium)


@mycelium.flow
def lists_demo(now):
    msgs = (
        "a message sent on: %s" % now,
        "a message sent on: %s" % now,
        ["mop", "kop", ["hop", "clop"]],
    )
    ret = sender.task_send(msgs)
    printer.task_print_it(ret["value"])

    ret = sender.task_send("Tralala")
    printer.task_print_it([[ret["value"]] * 10, [ret["value"], [ret["value"]]]])
    printer2.task_print_it(
        [ret["value"].upper(), [ret["value"] * 2, [ret["value"], "TRA"]]]
    )


def main():
    mycelium.init(init_db=True)
    mycelium.drop_jobs()

    run = lists_demo(time.ctime())

    sender.start_jobs(store_failures=True, raise_exceptions=True)
    printer.start_jobs(store_failures=True, raise_exceptions=True)
    printer2.start_jobs(store_failures=True, raise_exceptions=True)
    print("run %s: %s" % (run.id, run.wait(timeout=10)))


if __name__ == "__main__":
    main()
