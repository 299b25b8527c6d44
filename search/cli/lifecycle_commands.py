"""Commands about a search that runs or ran: `status`, `logs`, `stop`, `list`, `rm`.

Each works on a local experiment (a spec file, or an experiment directory: read from its record,
no Ray started) and, with --address, on a Ray job (Ray's Jobs API). `--json` prints what the
table shows, for scripts.
"""

from __future__ import annotations

import codecs
import json
import time
from typing import Any, Optional

import typer
from rich.table import Table

from search.cli.arguments import (JobsAddressOpt, JsonOpt, TargetArg, experiment_of,
                                  from_record, job_of, jobs_at, located, storage_path, summary_of)
from search.cli.console import EXIT_FAILED, err, fail, load, out


# ---- a job's experiment ----

def visible_summary(job: Any) -> Optional[Any]:
    """A job's experiment read from its record when its directory is visible from here (the
    head itself, or shared storage); None otherwise."""
    from search.experiment.record import Experiment, NoExperiment
    from search.experiment.state import DamagedRecord

    from search.experiment.storage import UnsupportedStorage, as_path

    try:
        if not job.experiment_dir or not as_path(job.experiment_dir).is_dir():
            return None
        return Experiment.open(job.experiment_dir).summary()
    except (NoExperiment, DamagedRecord, UnsupportedStorage, OSError):
        return None  # not readable from here (another machine's disk, no credentials)


# ---- how it reads ----

def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes
                                                    else f"{secs}s")


def best_text(summary: Any) -> str:
    best = summary.best
    if not best:
        return "-"
    params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in best["params"].items())
    return (f"{summary.metric} {best['value']:.4f} (trial {best['trial_id']}, "
            f"{best['epochs']} epochs) {params}").rstrip()


def front_text(summary: Any) -> str:
    """The Pareto front of a search of several objectives: its trials, each with its values."""
    if not summary.front:
        return "none yet (no trial has run its whole budget holding every constraint)"
    count = len(summary.front)
    return f"{count} trial{'s' if count != 1 else ''}: " + "; ".join(
        f"{t['trial_id']} (" + ", ".join(f"{m} {v:.4g}" if v is not None else f"{m} -"
                                        for m, v in t["values"].items()) + ")"
        for t in summary.front)


def print_summary(summary: Any) -> None:
    who = f" ({summary.driver})" if summary.driver else ""
    why = f" ({summary.reason})" if summary.reason and summary.status != "running" else ""
    out.print(f"experiment '{summary.name}': {summary.status}{who}{why}", highlight=False,
              markup=False)
    counts = " · ".join(f"{n} {kind}" for kind, n in summary.trials.items())
    used = summary.epochs_used
    share = f" ({100 * used / summary.epochs_budget:.0f}%)" if summary.epochs_budget else ""
    rows = [("directory", summary.directory),
            ("trials", f"{counts} (of {summary.trials_budget})"),
            ("best", best_text(summary)),
            *([("front", front_text(summary))] if summary.front is not None else []),
            ("budget", f"{used} of {summary.epochs_budget} trial-epochs used{share}"),
            ("elapsed", duration(summary.elapsed_s) + (
                f" · ETA {duration(summary.eta_s)}" if summary.eta_s is not None else "")),
            ("tracking", f"{summary.tracking_uri} (parent run {summary.parent_run_id})")]
    if summary.extended:
        rows.append(("extended", "; ".join(summary.extended)))
    if summary.warm_start:
        rows.append(("warm start", summary.warm_start.get("text", "")))
    if summary.status == "crashed":
        rows.append(("resume", "its driver is gone: launch (or submit) the same spec again"))
    for label, text in rows:
        out.print(f"  {label:<10} {_redacted(text)}", highlight=False, markup=False)


def _redacted(text: str) -> str:
    from search.spec.redact import redact

    return redact(text)


def print_job(job: Any) -> None:
    ran = (job.end_time or time.time()) - job.start_time if job.start_time else None
    code = f", exit code {job.exit_code}" if job.exit_code is not None else ""
    out.print(f"job {job.job_id}: {job.status} (experiment '{job.experiment}', "
              f"{duration(ran)}{code})", highlight=False, markup=False)
    if job.message and job.ended:
        out.print(f"  {job.message}", highlight=False, markup=False)


def dump(obj: Any) -> None:
    out.print_json(json.dumps(obj, default=str))


# ---- the commands ----

def status(target: str = TargetArg, address: Optional[str] = JobsAddressOpt,
           as_json: bool = JsonOpt) -> None:
    """How a search stands: trials running/pending/finished/stopped/failed, the best so far with its trial, trial-epochs used of the budget, elapsed time and an ETA.

    Reads the experiment's record (no Ray started); for a job, Ray's Jobs API too."""
    if address is None:
        summary = summary_of(experiment_of(target))
        if as_json:
            dump({"experiment": summary.as_json(), "job": None})
        else:
            print_summary(summary)
        return
    job = job_of(jobs_at(address), target)
    summary = visible_summary(job)
    if as_json:
        dump({"experiment": summary.as_json() if summary else None, "job": job.as_json()})
        return
    print_job(job)
    if summary is not None:
        print_summary(summary)
    else:
        out.print(f"  its experiment directory ({job.experiment_dir}) is not visible here; "
                  f"`resnet-search logs {job.job_id} --address {address}` shows its progress",
                  highlight=False, markup=False)


class JsonLines:
    """`logs --json`: each line of output as one JSON line, {"source": ..., "text": the line
    without its newline}, so a script reads a followed log line by line as it grows. Output
    arrives in pieces that need not end at a line's end: a piece's unfinished last line waits
    for the rest, and `end()` writes what is left when the output has ended."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._partial = ""

    def write(self, text: str) -> None:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._line(line)

    def _line(self, line: str) -> None:
        out.file.write(json.dumps({"source": self.source, "text": line}) + "\n")

    def flush(self) -> None:
        out.file.flush()

    def end(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        self.flush()


class Plain:
    """`logs` without --json: the output as it is."""

    def write(self, text: str) -> None:
        out.file.write(text)

    def flush(self) -> None:
        out.file.flush()

    def end(self) -> None:
        self.flush()


def logs(target: str = TargetArg, address: Optional[str] = JobsAddressOpt,
         follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines "
                                     "until the search's driver ends."),
         as_json: bool = typer.Option(False, "--json", help="JSON lines, one per line of "
                                      "output: {\"source\": experiment or job, \"text\": the "
                                      "line}.")
         ) -> None:
    """The search's output: its driver's log (<experiment>/launch.log), or a job's output."""
    if address is not None:
        jobs = jobs_at(address)
        job = job_of(jobs, target)
        sink = JsonLines(job.job_id) if as_json else Plain()
        try:
            if follow:
                from search.cli.run_commands import followed

                followed(jobs, job.job_id, address, stream=sink)
                return
            from search.remote.jobs import JobsError

            try:
                sink.write(jobs.logs(job.job_id))
            except JobsError as error:
                fail("cannot read the job's logs", str(error))
        finally:
            sink.end()
        return
    from search.experiment.storage import read_bytes
    from search.run.driverlog import LOG_FILE

    experiment = experiment_of(target)
    path = experiment.directory / LOG_FILE
    if not path.is_file():
        fail("no log", f"{path} does not exist: the experiment has not been launched yet")
    sink = JsonLines(str(experiment.directory)) if as_json else Plain()
    # Read whole each time from where we were: an object store's log is replaced whole by each
    # upload (no open stream sees it grow), and a log is small.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    offset = 0

    def more() -> None:
        nonlocal offset
        data = read_bytes(path)
        sink.write(decoder.decode(data[offset:]))
        sink.flush()
        offset = len(data)

    try:
        more()
        while follow:
            if experiment.driver() is None:  # the driver is gone: what is left was written
                more()
                return
            time.sleep(0.5)
            more()
    finally:
        sink.end()


def stop(target: str = TargetArg, address: Optional[str] = JobsAddressOpt,
         wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until the search has "
                                   "saved and its driver ended."),
         timeout: Optional[float] = typer.Option(
             None, "--timeout", help="Give up waiting after this many seconds (exit 1; the "
             "search still stops). Default: as long as the driver lives, with a line every "
             "30 s.", show_default=False),
         as_json: bool = JsonOpt) -> None:
    """Stop a running search: it saves and ends as `interrupted`; launching (or submitting) the same spec resumes it.

    Works from any shell or machine that sees the experiment's storage (a request file its driver obeys within seconds), or for a Ray job through the Jobs API."""
    if address is not None:
        _stop_job(target, address, wait, timeout, as_json)
        return
    experiment = experiment_of(target)
    driver = experiment.driver()
    if driver is None:
        state = experiment.state()
        fail("not running", f"experiment '{experiment.name}' has no running driver "
                            f"(its record says {state.status.value if state else 'nothing'})")
    experiment.request_stop()
    err.print(f"asked the driver of '{experiment.name}' ({driver.describe()}) to stop",
              highlight=False, markup=False)
    if not wait:
        if as_json:
            dump({"experiment": summary_of(experiment).as_json(), "job": None})
        return
    from search.wait.rules import Look, Verdict, duration
    from search.wait.waiter import wait_until

    # A live driver renews its lease: while it does, it is saving (or still starting Ray, which
    # it finishes before it obeys), however slowly a loaded machine lets it.
    import socket

    waited = wait_until(lambda: Look(ready=experiment.driver() is None),
                        f"the driver (pid {driver.pid} on {driver.host}) to save and end",
                        note=say, limit_s=timeout, first_s=10.0,
                        local=driver.host == socket.gethostname())
    if waited.verdict is not Verdict.READY:
        fail("still running", f"the driver has not ended within {duration(waited.elapsed_s)} "
                              "(--timeout); it still will: it obeys once Tune runs (a launch "
                              "still starting Ray takes longer)")
    summary = summary_of(experiment)
    if as_json:
        dump({"experiment": summary.as_json(), "job": None})
    else:
        print_summary(summary)


def say(text: str) -> None:
    err.print(text, highlight=False, markup=False)


def _stop_job(target: str, address: str, wait: bool, timeout: Optional[float],
              as_json: bool) -> None:
    from search.remote.jobs import JobsError

    jobs = jobs_at(address)
    job = job_of(jobs, target)
    if job.ended:
        fail("not running", f"job {job.job_id} has already ended: {job.status}")
    try:
        jobs.stop(job.job_id)
        err.print(f"asked job {job.job_id} to stop (its search saves first)", highlight=False,
                  markup=False)
        if wait:
            job = jobs.wait(job.job_id, timeout, note=say)
    except JobsError as error:
        fail("cannot stop the job", str(error))
    if as_json:
        dump({"experiment": None, "job": job.as_json()})
    else:
        print_job(job)
    if wait and not job.ended:
        raise typer.Exit(EXIT_FAILED)


def list_(paths: Optional[list[str]] = typer.Argument(
              None, help="Storage directories (or object store URIs: s3://bucket/runs), "
                         "experiment directories or spec files (default: ./runs).",
              show_default=False),
          address: Optional[str] = JobsAddressOpt, as_json: bool = JsonOpt) -> None:
    """Experiments (under storage directories) and, with --address, the cluster's search jobs, with their status."""
    from search.experiment.record import experiments_in
    from search.experiment.state import STATE_FILE

    directories: list[Any] = []
    for path in map(storage_path, paths or ([] if address else ["runs"])):
        if path.is_file():
            directories.append(located(load(path, None, None, None)).directory)
        elif (path / STATE_FILE).is_file():
            directories.append(path)
        else:
            directories.extend(experiments_in(path))
    summaries = [s for s in (_quiet_summary(d) for d in dict.fromkeys(directories))
                 if s is not None]
    found_jobs = []
    if address is not None:
        from search.remote.jobs import JobsError

        try:
            found_jobs = jobs_at(address).ours()
        except JobsError as error:
            fail("cannot list the jobs", str(error))
    if as_json:
        dump({"experiments": [s.as_json() for s in summaries],
              "jobs": [j.as_json() for j in found_jobs]})
        return
    if summaries or not address:
        table = Table(title="experiments", title_justify="left")
        for column in ("name", "status", "trials ended", "best", "trial-epochs", "elapsed",
                       "directory"):
            table.add_column(column)
        for s in summaries:
            ended = sum(n for k, n in s.trials.items() if k not in ("running", "pending",
                                                                     "to start"))
            best = f"{s.best['value']:.4f}" if s.best else "-"
            table.add_row(s.name, s.status, f"{ended}/{s.trials_budget}", best,
                          f"{s.epochs_used}/{s.epochs_budget}", duration(s.elapsed_s),
                          s.directory)
        out.print(table)
    if address is not None:
        table = Table(title=f"jobs on {address}", title_justify="left")
        for column in ("job", "status", "experiment", "started", "ran"):
            table.add_column(column)
        for job in found_jobs:
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.start_time)) if (
                job.start_time) else "-"
            ran = (job.end_time or time.time()) - job.start_time if job.start_time else None
            table.add_row(job.job_id, job.status, job.experiment, started, duration(ran))
        out.print(table)


def rm(target: str = typer.Argument(..., metavar="EXPERIMENT", show_default=False,
                                    help="A spec file, an experiment directory or its URI "
                                         "(s3://bucket/runs/NAME)."),
       mlflow: bool = typer.Option(False, "--mlflow", help="Also delete its MLflow runs: the "
                                   "parent run and every trial run under it."),
       yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
       ) -> None:
    """Remove an experiment: its record, Ray's state, checkpoints, log and report (its directory or S3 prefix), the launches moved aside beside it (NAME.aborted-TIME), and with --mlflow its MLflow runs (its retrains' too).

    Refuses a running search (exit 1, naming its driver): stop it first. Asks before removing anything unless --yes."""
    from search.experiment.lease import LeaseError
    from search.experiment.storage import remove_tree

    experiment = experiment_of(target)
    state = from_record(experiment.state)
    if state is None:
        fail("no experiment", f"{experiment.directory} holds no experiment record: nothing to "
                              "remove")
    name, where = experiment.name, experiment.directory
    driver = experiment.driver()
    if driver is not None:
        _running(name, target, driver.describe())
    tracking = experiment.location.tracking_uri
    aside = experiment.kept_aside()
    kept = (f", the {len(aside)} launches moved aside beside it ({_names(aside)})"
            if aside else "")
    runs = (f", and its MLflow runs (parent run {state.parent_run_id}, its trials and its "
            f"retrains in {_redacted(tracking)})") if mlflow else ""
    if not yes:
        try:
            sure = typer.confirm(f"remove experiment '{name}' ({where}): its record, Ray's state, "
                                 f"checkpoints and log{kept}{runs}?", err=True)
        except typer.Abort:  # no answer (stdin closed)
            sure = False
        if not sure:
            fail("not removed", f"experiment '{name}' is kept (give --yes to remove it without "
                                "asking)")
    try:
        lease = experiment.lease()  # no launch starts in a half-removed experiment
    except LeaseError as error:  # a driver took it since, or one we cannot judge yet
        fail("not removed", str(error))
    try:
        if mlflow:
            from search.tracking.removal import delete_search_runs

            deleted, problem = 0, None
            for parent in [state.parent_run_id, *_parent_runs(aside)]:
                count, problem = delete_search_runs(tracking, parent)
                deleted += count
                if problem:
                    break
            if problem:
                fail("not removed", f"deleting the MLflow runs of '{name}' failed ({problem}); "
                                    "the experiment is kept: run rm again, or without --mlflow")
            say(f"deleted {deleted} MLflow runs of '{name}' from {_redacted(tracking)} "
                "(`mlflow gc` purges deleted runs for good)")
        experiment.remove()
        for directory in aside:  # each a whole experiment directory of its own, no lease
            remove_tree(directory)
    finally:
        lease.release()
    _drop_directory(where)
    out.print(f"removed experiment '{name}' ({where})"
              + (f" and the {len(aside)} launches moved aside beside it" if aside else ""),
              highlight=False, markup=False)


def _parent_runs(directories: list) -> list[str]:
    """The MLflow parent runs of launches moved aside (each its own search in MLflow)."""
    from search.experiment.state import DamagedRecord, read_state

    found = []
    for directory in directories:
        try:
            state = read_state(directory)
        except DamagedRecord:
            continue  # nothing to follow: its folder goes all the same
        if state is not None and state.parent_run_id:
            found.append(state.parent_run_id)
    return found


def _names(directories: list) -> str:
    return ", ".join(directory.name for directory in directories)


def _running(name: str, target: str, driver: str) -> None:
    fail("running", f"experiment '{name}' is running ({driver}); stop it first "
                    f"(resnet-search stop {target}), then remove it")


def _drop_directory(directory: Any) -> None:
    """The emptied directory itself; an object store has no directories to remove. One that is
    not empty any more (a launch started meanwhile) is that launch's."""
    from search.experiment.storage import is_local

    if is_local(directory):
        try:
            directory.rmdir()
        except OSError:
            pass


def _quiet_summary(directory: Any) -> Optional[Any]:
    """A listed experiment that cannot be read is shown by `status`, not a reason to fail."""
    from search.experiment.record import Experiment, NoExperiment
    from search.experiment.state import DamagedRecord

    try:
        return Experiment.open(directory).summary()
    except (NoExperiment, DamagedRecord) as error:
        err.print(f"skipped {directory}: {error}", highlight=False, markup=False)
        return None


def register(app: typer.Typer) -> None:
    app.command()(status)
    app.command()(logs)
    app.command()(stop)
    app.command(name="list")(list_)
    app.command()(rm)
