"""This process's share of a run: generate each batch group, execute its programs, append its lines.

Generation and execution overlap: while the sandbox runs group i's programs on a thread of its own, the
calling thread generates group i+1, so the model waits only when the sandbox is truly the bottleneck (and
the other way round). Groups are executed and appended in the order generated; at most one generated group
waits for the sandbox, so memory stays bounded. Each side's busy and waiting time is returned for the
summary.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from harness.execution.executor import Executor
from harness.execution.jobs import execute
from harness.execution.problem_limits import TimeLimits
from harness.generation.conversations import Conversation, ConversationGenerator, Unit
from harness.feedback.rounds import execute_rounds
from harness.runs.folder.records import sample_record
from harness.runs.folder.parts import PartWriter

Handed = tuple[int, list[Conversation]] | None  # a generated group (index, conversations), or None: no more


class GroupWork:
    """Generates groups on the calling thread and executes and appends them on a thread of its own."""

    def __init__(self, generator: ConversationGenerator, groups: list[list[Unit]], executor: Executor,
                 limits: TimeLimits, part: PartWriter, on_group_done: Callable[[], None]):
        self.generator = generator
        self.groups = groups
        self.executor = executor
        self.limits = limits
        self.part = part
        self.on_group_done = on_group_done
        self._handoff: queue.Queue[Handed] = queue.Queue(maxsize=1)
        self._failure: list[BaseException] = []
        self._clock = {"generation_seconds": 0.0, "generation_waited_seconds": 0.0,
                       "execution_seconds": 0.0, "execution_waited_seconds": 0.0}

    def run(self, mine: list[int]) -> dict[str, float]:
        """Do the groups ``mine`` (indices into the run's groups); their lines are appended before this
        returns. Returns each side's busy and waiting seconds; raises the first failure of either side."""
        executing = threading.Thread(target=self._execute_groups, name="execute-groups", daemon=True)
        executing.start()
        try:
            for index in mine:
                t0 = time.perf_counter()
                conversations = self.generator.run_group(self.groups[index])
                t1 = time.perf_counter()
                self._clock["generation_seconds"] += t1 - t0
                self._hand_over((index, conversations))
                self._clock["generation_waited_seconds"] += time.perf_counter() - t1
                if self._failure:
                    break
        finally:
            self._hand_over(None)  # the groups already handed over are executed and written before this returns
            executing.join()
        if self._failure:
            raise self._failure[0]
        return {key: round(seconds, 3) for key, seconds in self._clock.items()}

    def _hand_over(self, item: Handed) -> None:
        """Blocks while the sandbox is still busy with the previous group, unless it has failed."""
        while not self._failure:
            try:
                self._handoff.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _execute_groups(self) -> None:
        while True:
            t0 = time.perf_counter()
            item = self._handoff.get()
            self._clock["execution_waited_seconds"] += time.perf_counter() - t0
            if item is None:
                return
            t1 = time.perf_counter()
            try:
                self._execute_group(*item)
            except BaseException as exc:  # handed to the generating thread, which stops the run
                self._failure.append(exc)
                return
            finally:
                self._clock["execution_seconds"] += time.perf_counter() - t1

    def _execute_group(self, index: int, conversations: list[Conversation]) -> None:
        checker = self.generator.checker
        if checker is None:
            executions, extras = execute(conversations, self.executor, self.limits), [{}] * len(conversations)
        else:  # the hidden tests' verdict after every repair round
            executions, extras = execute_rounds(conversations, self.executor, self.limits,
                                                         checker.max_repairs)
        self.part.append([{"group": index, **sample_record(c, e, self.generator.seed), **extra}
                          for c, e, extra in zip(conversations, executions, extras)])
        self.on_group_done()
