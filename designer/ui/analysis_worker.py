"""Shape inference and checks off the GUI thread.

A full check of a 500-layer design takes tens of milliseconds, and a layer whose shape needs the
meta-device fallback can cost more; on the GUI thread either would drop frames while editing. So the
document hands the worker a frozen snapshot
(``graph.copy()``, no listeners) and the worker never touches live objects.

The worker keeps its own replica graph with an incremental :class:`~designer.engine.model.shapes.Analyzer`
on it. Each request is merged into the replica through the graph's own methods, so the analyzer's
event-driven dirty tracking re-infers only what changed. Requests carry a generation number; a
request overtaken by a newer one is skipped, and the document drops results older than its latest
request. Results reach the document through a queued signal to a slot of a GUI-thread QObject.

A failure of the checker itself (a bug, not a problem of the design) never dies quietly in the
thread: its traceback is logged (``designer.ui.analysis_worker``, on stderr by default) and its
message reaches the window, which lists it in the Problems panel.
"""

from __future__ import annotations

import logging
import threading
import traceback

from PySide6.QtCore import QObject, QThread, Signal, Slot

from designer.engine.model.graph import Graph, GraphError, Node
from designer.engine.model.shapes import Analysis, Analyzer

_log = logging.getLogger(__name__)


def use_context(library: dict[str, Graph], trail: list[tuple[str, str]]):
    """The block values and input shapes a definition opened through ``trail`` (the breadcrumb:
    (network, use id) per level) receives from the use it was opened from; (None, None) at the
    top or when a shape on the way is unknown (the definition is then checked on its own)."""
    from designer.engine.model.blocks import use_context as context_of

    values = inputs = None
    for net, use_id in trail:
        graph = library.get(net)
        if graph is None:
            return None, None
        analysis = Analyzer(graph, values, inputs, subscribe=False).analyze()
        found = context_of(graph, analysis, use_id)
        if found is None:
            return None, None
        values, inputs = found
    return values, inputs


def sync_graph(replica: Graph, snapshot: Graph) -> None:
    """Make ``replica`` equal to ``snapshot`` (see :func:`_sync`): the network analysed."""
    _sync(replica, snapshot)


def _sync(replica: Graph, snapshot: Graph) -> None:
    """Make ``replica`` equal to ``snapshot`` (ids, types, names, params, edges, node order) using
    the graph's mutation methods, so listeners see exactly the changes. Positions are ignored."""
    snap_nodes = snapshot.nodes
    for nid in list(replica.nodes):
        old = replica.nodes[nid]
        new = snap_nodes.get(nid)
        if new is None or (old.type, old.name) != (new.type, new.name):
            replica.remove_node(nid)
        else:
            if old.params != new.params:
                # A parameter edit marks only this node as changed (not its edges and neighbours).
                try:
                    replica.set_params(nid, new.params)
                except GraphError:
                    replica.remove_node(nid)
                    continue
            if old.when != new.when:
                replica.set_when(nid, new.when)
    wanted = set(snapshot.edges)
    for e in [e for e in replica.edges if e not in wanted]:
        replica.disconnect(e)
    for nid, n in snap_nodes.items():
        if nid not in replica.nodes:
            # restore_node skips the name check: a loaded file may hold duplicate names, which
            # the structural check must get to see and report.
            replica.restore_node(Node(n.id, n.type, n.name, dict(n.params), n.pos, n.when))
    have = set(replica.edges)
    for e in snapshot.edges:
        if e not in have:
            replica.connect(e.src, e.dst, e.dst_port, check=False)
    if list(replica.nodes) != list(snap_nodes):
        ordered = [(nid, replica.nodes[nid]) for nid in snap_nodes]
        replica.nodes.clear()
        replica.nodes.update(ordered)
    if replica.edges != snapshot.edges:
        replica.edges[:] = list(snapshot.edges)
    replica.set_block_params(snapshot.block_params)
    replica.set_sequential(snapshot.sequential)


def sync_library(replicas: dict[str, Graph], library: dict[str, Graph]) -> None:
    """Make the replica networks equal the snapshot's ``library`` (the project's networks, for
    block uses), each through :func:`sync_graph`, so a definition's version changes only when it
    really changed and the uses' cached insides stay valid otherwise."""
    for name in [n for n in replicas if n not in library]:
        del replicas[name]
    for name, graph in library.items():
        replica = replicas.get(name)
        if replica is None:
            replica = replicas[name] = Graph()
        _sync(replica, graph)
    ordered = [(name, replicas[name]) for name in library]
    replicas.clear()
    replicas.update(ordered)
    for replica in replicas.values():
        replica.library = replicas


class AnalysisWorker(QObject):
    """Lives in the worker thread; analyses snapshots sent through :attr:`requested`."""

    finished = Signal(int, object)  # generation, Analysis
    failed = Signal(int, str)  # generation, message

    def __init__(self) -> None:
        super().__init__()
        self._replica = Graph()
        self._library: dict[str, Graph] = {}
        self._analyzer = Analyzer(self._replica)
        self._lock = threading.Lock()
        self._latest = 0

    def note_request(self, generation: int) -> None:
        """Called from the GUI thread before a request is queued, so older ones can be skipped."""
        with self._lock:
            self._latest = max(self._latest, generation)

    @Slot(int, object)
    def analyse(self, generation: int, snapshot: Graph) -> None:
        with self._lock:
            if generation < self._latest:
                return  # a newer snapshot is queued behind this one
        try:
            if snapshot.library is not None:
                sync_library(self._library, snapshot.library)
            self._replica.library = self._library if snapshot.library is not None else None
            sync_graph(self._replica, snapshot)
            trail = getattr(snapshot, "trail", None) or []
            context = use_context(self._library, trail) if trail else (None, None)
            analyzer = self._analyzer
            if (analyzer.values, analyzer.inputs) != context:
                analyzer.values, analyzer.inputs = context
                analyzer._dirty = set(self._replica.nodes)  # every layer reads them
                analyzer._last = None
            result = analyzer.analyze()
        except Exception as exc:  # noqa: BLE001 - a bug in inference must not kill the thread
            _log.exception("The shape check failed (a bug in the checker, not in the design)")
            self._library = {}
            self._replica = Graph()
            self._analyzer = Analyzer(self._replica)
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            self.failed.emit(generation, f"Shape check failed: {last}")
            return
        self.finished.emit(generation, result)


class AnalysisThread(QObject):
    """Owns the worker thread. Lives in the GUI thread; :attr:`ready` is emitted there."""

    ready = Signal(int, object)  # generation, Analysis
    error = Signal(int, str)
    _request = Signal(int, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("designer-analysis")
        self._worker = AnalysisWorker()
        self._worker.moveToThread(self._thread)
        self._request.connect(self._worker.analyse)
        # Bound slots of this GUI-thread object: delivered in the GUI thread (queued).
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._thread.finished.connect(self._worker.deleteLater)
        self._thread.start()
        self._stopped = False

    def submit(self, generation: int, snapshot: Graph) -> None:
        if self._stopped:
            return
        self._worker.note_request(generation)
        self._request.emit(generation, snapshot)

    @Slot(int, object)
    def _on_finished(self, generation: int, analysis: Analysis) -> None:
        self.ready.emit(generation, analysis)

    @Slot(int, str)
    def _on_failed(self, generation: int, message: str) -> None:
        self.error.emit(generation, message)

    def stop(self) -> None:
        """Finish the current request, stop the thread and wait for it."""
        if self._stopped:
            return
        self._stopped = True
        self._thread.quit()
        self._thread.wait()

    def is_running(self) -> bool:
        return self._thread.isRunning()
