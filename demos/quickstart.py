"""The quickstart of the original blumycelium, on the embedded mycelium.

An elf sends a message to another elf, which prints it. Tasks are methods
whose names start with ``task_``; their return annotation is mandatory.
The orchestration is the flow ``send_and_print``: calling it compiles and
stores the jobs; ``start_jobs`` then runs each elf's ready jobs, the
sender's first, since the printer's job waits for the sender's result.

Run it with ``python demos/quickstart.py``; the mycelium is ./mycelium.db
(or BLUMYCELIUM_URL).
"""

import time

from blumycelium import MachineElf, Mycelium


class PrinterElf(MachineElf):
    """Prints what it is given.

    The return annotation is mandatory; argument annotations, when present,
    are checked against the values a job receives.
    """

    def task_print_it(self, to_print) -> None:
        print(">>> Machine >>> Elf >>> Printer: '%s'" % to_print)


class SenderElf(MachineElf):
    """Sends a message on.

    A task returns None or a dict; ("value",) declares the dict's keys. A
    list of keys works too, and so does a dict of key to type, e.g.
    {"value": float}.
    """

    def task_send(self, to_send) -> ("value",):
        return {"value": to_send}


mycelium = Mycelium()
printer = PrinterElf("The Elf Printer", mycelium)
sender = SenderElf("The Sender Elf", mycelium)


@mycelium.flow
def send_and_print(message):
    ret = sender.task_send(message)
    printer.task_print_it(ret["value"])


def main():
    mycelium.init(init_db=True)
    printer.register(store_source=True)
    sender.register(store_source=True)

    run = send_and_print("a message sent on: %s" % time.ctime())

    sender.start_jobs(store_failures=True, raise_exceptions=True)
    print("===> print")
    printer.start_jobs(store_failures=True, raise_exceptions=True)
    print("run %s: %s" % (run.id, run.wait(timeout=10)))


if __name__ == "__main__":
    main()
