"""convscope tune's link to Optuna: one long-lived process per search worker (src/tune/optuna-helper.ts
starts it), speaking JSON lines over stdin/stdout.

The first line it writes says whether Optuna imported: {"ready": true, "optuna": "5.0.0"} or
{"ready": false, "error": "..."}. Then every request line {"id": n, "op": "...", ...} gets exactly one
reply line {"id": n, "ok": true, "result": ...} or {"id": n, "ok": false, "error": {"type", "message"}},
in order. Nothing else is written to stdout (stray prints go to stderr). The study, its trials and
their states live in Optuna's storage (an SQLAlchemy URL: SQLite by default, PostgreSQL to share a
study between machines); this process keeps no state of its own beyond the trials it is running.

Trials are the study's WAITING trials: the process that creates the study enqueues one per trial of the
budget, and workers pop them (Optuna's atomic WAITING -> RUNNING), so two workers never run the same
trial and the budget is met whatever the number of workers. A trial whose worker is gone (no heartbeat
for the grace period, a helper whose stdin closed, a search resumed after a kill) is marked FAIL and a
copy with the same parameters is enqueued (as Optuna's RetryHeartbeatStaleTrialCallback does).

SIGINT is ignored: Ctrl-C reaches the whole process group, and the worker decides what a stop means
(it fails and re-enqueues the trial under way, then closes this process's stdin).
"""
import json
import math
import os
import signal
import sys
import threading
import traceback
import warnings


def _open_protocol_stream():
    """The real stdout for replies; fd 1 is pointed at stderr so that nothing else can reach it."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


OUT = _open_protocol_stream()
WRITE_LOCK = threading.Lock()


def send(message):
    line = json.dumps(message, allow_nan=False, separators=(",", ":"))
    with WRITE_LOCK:
        OUT.write(line + "\n")
        OUT.flush()


def finite_or_none(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


signal.signal(signal.SIGINT, signal.SIG_IGN)

try:
    warnings.simplefilter("ignore")
    import numpy as np
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.storages import RDBStorage
    from optuna.storages._heartbeat import HeartbeatThread, is_heartbeat_enabled
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
except Exception as e:  # ImportError, or a broken install
    send({"ready": False, "error": f"{type(e).__name__}: {e}"})
    sys.exit(0)


class AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler without its stop at the end of the grid: Study.stop() works only inside
    optimize(), and here the study's WAITING trials, not the sampler, say when the search is done."""

    def after_trial(self, study, trial, state, values):
        pass


STATES = {
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "fail",
}


def trial_seed(seed, number):
    """A sampler seed for trial `number` of a search seeded with `seed`: the same on every machine and
    in every worker, so that a trial's draw does not depend on which worker asks or on a resume."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def distribution_of(d):
    if d["type"] == "float":
        return FloatDistribution(d["low"], d["high"], log=d["log"])
    if d["type"] == "int":
        return IntDistribution(d["low"], d["high"], log=d["log"])
    return CategoricalDistribution(d["choices"])


def enqueue_retry(study, trial):
    """A WAITING copy of a failed trial: its parameters and system attributes (a grid trial keeps its
    grid point), with `failed_trial` and `retry_history` as Optuna's RetryHeartbeatStaleTrialCallback
    records them, but not its user attributes (the failed run's figures and reason are not the copy's)."""
    system_attrs = {"failed_trial": trial.number, "retry_history": [], **trial.system_attrs}
    system_attrs["retry_history"] = list(system_attrs["retry_history"]) + [trial.number]
    study.add_trial(
        create_trial(state=TrialState.WAITING, params=trial.params, distributions=trial.distributions, system_attrs=system_attrs)
    )


def serialize_sqlite_transactions(engine):
    """Every SQLite transaction starts with BEGIN IMMEDIATE (SQLAlchemy's recipe for pysqlite), so that
    it takes the file's write lock at once and waits for it (the 60 s timeout). In SQLite's default
    deferred mode a transaction that read first and then writes while another process holds the write
    lock fails at once with "database is locked" (SQLite refuses to wait, to avoid a deadlock): what
    several workers telling, failing and enqueueing trials at the same moment ran into."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # pysqlite's own BEGIN off: the one below is used

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made before the hooks are dropped


def postgres_driver(url):
    """postgresql:// is psycopg (3) in SQLAlchemy 2; where only psycopg2 is installed, it is used instead."""
    if not url.startswith("postgresql://"):
        return url
    try:
        import psycopg  # noqa: F401
    except ImportError:
        try:
            import psycopg2  # noqa: F401

            return "postgresql+psycopg2://" + url[len("postgresql://"):]
        except ImportError:
            pass
    return url


def redacted(url):
    """The URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<the storage URL>"


class Helper:
    def __init__(self):
        self.storage = None
        self.study = None
        self.config = None
        self.trials = {}  # trial id -> optuna.Trial, the trials this process runs
        self.heartbeats = {}  # trial id -> HeartbeatThread

    # -- the storage and the study --------------------------------------------------------------

    def op_open(self, req):
        url = postgres_driver(req["storage"])
        interval = req.get("heartbeat")
        engine_kwargs = {}
        if url.startswith("sqlite"):
            # Workers on one machine share the file; a writer waits for another instead of failing.
            engine_kwargs["connect_args"] = {"timeout": 60}
        elif url.startswith("postgresql"):
            # An unreachable server is an error after 10 s, not after the system's TCP timeout.
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
        try:
            self.storage = RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=interval,
                grace_period=req.get("grace") if interval else None,
            )
        except Exception as e:
            cause = f" ({type(e.__cause__).__name__}: {first_line(e.__cause__)})" if isinstance(e, ImportError) and e.__cause__ else ""
            raise RuntimeError(f"cannot open the Optuna storage {redacted(req['storage'])}: {type(e).__name__}: {first_line(e)}{cause}") from e
        if url.startswith("sqlite"):
            serialize_sqlite_transactions(self.storage.engine)
        return self.describe_study(req["study"])

    def describe_study(self, name):
        try:
            study_id = self.storage.get_study_id_from_name(name)
        except KeyError:
            self.study = None
            return {"exists": False}
        self.study = optuna.load_study(study_name=name, storage=self.storage)
        trials = self.storage.get_all_trials(study_id, deepcopy=False)
        names = sorted({n for t in trials for n in t.distributions})
        return {
            "exists": True,
            "userAttrs": self.study.user_attrs,
            "directions": [d.name.lower() for d in self.study.directions],
            "trialCount": len(trials),
            "paramNames": names,
        }

    def op_create(self, req):
        """Creates the study with its convscope attributes and one WAITING trial per trial of the
        budget. A study created meanwhile by another process is described instead (created: false)."""
        name = req["study"]
        try:
            study = optuna.create_study(storage=self.storage, study_name=name, direction="maximize")
        except optuna.exceptions.DuplicatedStudyError:
            return {"created": False, **self.describe_study(name)}
        for key, value in req["userAttrs"].items():
            study.set_user_attr(key, value)
        for _ in range(req["budget"]):
            study.add_trial(create_trial(state=TrialState.WAITING))
        self.study = study
        return {"created": True, **self.describe_study(name)}

    def op_configure(self, req):
        """The search's sampler, pruner and distributions (from its convscope definition)."""
        sampler = req["sampler"]
        if sampler["kind"] == "cmaes":
            try:
                import cmaes  # noqa: F401
            except ImportError:
                raise RuntimeError(
                    "sampler 'cmaes' needs the Python package cmaes, which scripts/setup.sh does not install: "
                    f"{sys.executable} -m pip install cmaes"
                )
        self.config = {
            "sampler": sampler,
            "distributions": [(d["name"], distribution_of(d)) for d in req["distributions"]],
            "pruner": self.make_pruner(req["pruner"]),
            "prunerKind": req["pruner"]["kind"],
        }
        if self.study is not None:
            self.study.pruner = self.config["pruner"]
        return {}

    @staticmethod
    def make_pruner(p):
        kind = p["kind"]
        if kind == "median":
            return optuna.pruners.MedianPruner(
                n_startup_trials=p["minTrials"], n_warmup_steps=p["graceEpochs"], interval_steps=1, n_min_trials=p["minTrials"]
            )
        if kind == "successive-halving":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=p["graceEpochs"], reduction_factor=p["reductionFactor"])
        if kind == "hyperband":
            return optuna.pruners.HyperbandPruner(
                min_resource=p["graceEpochs"], max_resource=p["epochs"], reduction_factor=p["reductionFactor"]
            )
        return optuna.pruners.NopPruner()

    def make_sampler(self, number):
        s = self.config["sampler"]
        kind = s["kind"]
        if kind == "grid":
            # The grid's order comes from the search's seed alone: every worker maps grid ids alike.
            return AskTellGridSampler(s["grid"], seed=s["seed"])
        seed = trial_seed(s["seed"], number)
        if kind == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if kind == "tpe":
            # constant_liar: trials running in other workers count as poor, so workers spread out.
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s["startupTrials"], constant_liar=True)
        if kind == "cmaes":
            return optuna.samplers.CmaEsSampler(
                seed=seed, n_startup_trials=s["startupTrials"], independent_sampler=optuna.samplers.RandomSampler(seed=seed)
            )
        raise ValueError(f"unknown sampler {kind}")

    def need_study(self):
        if self.study is None:
            raise RuntimeError("no study is open")
        return self.study

    # -- trials -----------------------------------------------------------------------------------

    def op_ask(self, req):
        """The next WAITING trial, now RUNNING in this worker, with its parameters drawn; or none,
        with the number of trials other workers are still running."""
        study = self.need_study()
        if self.config is None:
            raise RuntimeError("configure the search before asking for trials")
        self.fail_stale_trials(study)
        # Study.ask() would create a new trial when none waits; the budget is the waiting trials, so
        # only a waiting one is taken (Optuna's own queue, the same call ask() makes first).
        study._thread_local.cached_all_trials = None
        trial_id = study._pop_waiting_trial_id()
        if trial_id is None:
            running = self.storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.RUNNING,))
            return {"trial": None, "running": len(running)}
        if is_heartbeat_enabled(self.storage):
            # The first heartbeat now, before anything else: Optuna counts a RUNNING trial with no
            # heartbeat at all as alive forever, so a worker killed before its heartbeat thread's
            # first beat would leave its trial running for good.
            self.storage.record_heartbeat(trial_id)
        frozen = self.storage.get_trial(trial_id)
        study.sampler = self.make_sampler(frozen.number)
        trial = optuna.Trial(study, trial_id)
        params = {name: trial._suggest(name, d) for name, d in self.config["distributions"]}
        if req.get("worker"):
            trial.set_user_attr("worker", req["worker"])
        self.trials[trial_id] = trial
        if is_heartbeat_enabled(self.storage):
            beat = HeartbeatThread(trial_id, self.storage)
            beat.start()
            self.heartbeats[trial_id] = beat
        return {
            "trial": {"id": trial_id, "number": trial.number, "params": params, "retryOf": frozen.system_attrs.get("failed_trial")}
        }

    def fail_stale_trials(self, study):
        """Optuna's fail_stale_trials, with the reason recorded first: a RUNNING trial whose heartbeat
        is older than the grace period (its worker was killed) is failed and a copy enqueued. When two
        workers see it at once, Optuna's state change lets only one of them fail it."""
        if not is_heartbeat_enabled(self.storage):
            return
        reason = f"no heartbeat for {self.storage.grace_period} s: its worker was killed or lost; run again"
        for trial_id in self.storage._get_stale_trial_ids(study._study_id):
            try:
                self.storage.set_trial_user_attr(trial_id, "reason", reason)
                if self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                    enqueue_retry(study, self.storage.get_trial(trial_id))
            except optuna.exceptions.UpdateFinishedTrialError:
                pass

    def running_trial(self, req):
        trial = self.trials.get(req["trialId"])
        if trial is None:
            raise RuntimeError(f"trial id {req['trialId']} is not running in this worker")
        return trial

    def op_report(self, req):
        """An epoch's validation accuracy; with prune: true, the pruner's verdict on it."""
        trial = self.running_trial(req)
        step = req["step"]
        trial.report(req["value"], step)
        if not req.get("prune"):
            return {"prune": False}
        prune = bool(trial.should_prune())
        result = {"prune": prune}
        if prune and self.config["prunerKind"] == "median":
            completed = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            at_step = [t.intermediate_values[step] for t in completed if step in t.intermediate_values]
            if at_step:
                result["median"] = float(np.median(at_step))
                result["peers"] = len(at_step)
        return result

    def stop_heartbeat(self, trial_id):
        beat = self.heartbeats.pop(trial_id, None)
        if beat is not None:
            beat.join()

    def op_tell(self, req):
        """Finishes a trial: complete (with its value), pruned or fail; retry: true enqueues a copy."""
        trial = self.running_trial(req)
        trial_id = req["trialId"]
        for key, value in (req.get("userAttrs") or {}).items():
            trial.set_user_attr(key, value)
        self.stop_heartbeat(trial_id)
        state = req["state"]
        if state == "complete":
            self.study.tell(trial, req["value"])
        elif state == "pruned":
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, state=TrialState.FAIL)
            if req.get("retry"):
                enqueue_retry(self.study, self.storage.get_trial(trial_id))
        del self.trials[trial_id]
        return {}

    def op_fail_running(self, req):
        """Marks every RUNNING trial FAIL (reason in its user attrs) and enqueues a copy of each: for a
        search resumed on a storage no other worker uses, where a running trial was left by a kill."""
        study = self.need_study()
        failed = []
        for t in self.storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            if t._trial_id in self.trials:
                continue
            self.storage.set_trial_user_attr(t._trial_id, "reason", req["reason"])
            try:
                if not self.storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
            enqueue_retry(study, self.storage.get_trial(t._trial_id))
            failed.append(t.number)
        return {"failed": failed}

    def op_trials(self, req):
        study = self.need_study()
        out = []
        for t in self.storage.get_all_trials(study._study_id, deepcopy=False):
            out.append(
                {
                    "number": t.number,
                    "state": STATES.get(t.state, t.state.name.lower()),
                    "params": t.params,
                    "value": finite_or_none(t.value) if t.state == TrialState.COMPLETE or t.state == TrialState.PRUNED else None,
                    "intermediate": [[int(s), finite_or_none(v)] for s, v in sorted(t.intermediate_values.items())],
                    "userAttrs": t.user_attrs,
                    "retryOf": t.system_attrs.get("failed_trial"),
                    "start": t.datetime_start.isoformat() if t.datetime_start else None,
                    "complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
                }
            )
        return {"trials": out, "userAttrs": study.user_attrs}

    def op_set_study_attr(self, req):
        self.need_study().set_user_attr(req["key"], req["value"])
        return {}

    def fail_own_trials(self, reason):
        """The worker is gone (stdin closed): its trials fail now and are enqueued again, instead of
        waiting for their heartbeats to go stale."""
        for trial_id in list(self.trials):
            try:
                self.storage.set_trial_user_attr(trial_id, "reason", reason)
                self.stop_heartbeat(trial_id)
                if self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                    enqueue_retry(self.study, self.storage.get_trial(trial_id))
            except Exception:
                traceback.print_exc()
            del self.trials[trial_id]

    def close(self):
        for trial_id in list(self.heartbeats):
            self.stop_heartbeat(trial_id)


def first_line(e):
    text = str(e).strip()
    return text.split("\n")[0] if text else type(e).__name__


def main():
    helper = Helper()
    send({"ready": True, "optuna": optuna.__version__, "python": sys.version.split()[0], "pid": os.getpid()})
    ops = {
        "open": helper.op_open,
        "create": helper.op_create,
        "configure": helper.op_configure,
        "ask": helper.op_ask,
        "report": helper.op_report,
        "tell": helper.op_tell,
        "failRunning": helper.op_fail_running,
        "trials": helper.op_trials,
        "setStudyAttr": helper.op_set_study_attr,
    }
    while True:
        line = sys.stdin.readline()
        if not line:
            helper.fail_own_trials("its worker process ended during the trial")
            helper.close()
            return
        line = line.strip()
        if not line:
            continue
        req_id = None
        try:
            req = json.loads(line)
            req_id = req.get("id")
            op = req.get("op")
            if op == "close":
                helper.fail_own_trials("its worker closed the helper during the trial")
                helper.close()
                send({"id": req_id, "ok": True, "result": {}})
                return
            if op not in ops:
                raise ValueError(f"unknown op {op!r}")
            result = ops[op](req)
            send({"id": req_id, "ok": True, "result": result})
        except Exception as e:
            traceback.print_exc()
            send({"id": req_id, "ok": False, "error": {"type": type(e).__name__, "message": first_line(e)}})


if __name__ == "__main__":
    main()
