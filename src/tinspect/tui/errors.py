"""One route for unexpected worker errors.

Textual's ``Worker.StateChanged`` does not bubble: it reaches only the node that started the
worker. Every node that starts workers mixes this in, so an error state becomes a
``WorkerFailed`` message that bubbles to the App, which shows it (a status line, the
problems list) instead of a traceback. Workers run with ``exit_on_error=False``, so the
viewer lives on; expected failures (missing data, damaged checkpoints) are handled inside
the workers and never take this route.
"""

from __future__ import annotations

from textual import on
from textual.message_pump import MessagePump
from textual.worker import Worker, WorkerState

from tinspect.tui.messages import WorkerFailed


class ReportsWorkerErrors(MessagePump):
    @on(Worker.StateChanged)
    def _report_worker_error(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            worker = event.worker
            self.post_message(WorkerFailed(worker.name or worker.group, worker.error))
