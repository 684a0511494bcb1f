"""What the Ray job entrypoints share: arguments, logging, config loading and exit codes.

Exit codes and messages are the command line's (``deepsalt.errors.ExitCode`` and ``explain``): 0
done, 1 failed (the job server reports FAILED), 2 invalid config (nothing was started), 130
stopped. Every failure is logged as one ``job failed`` line naming the file or field; the
traceback goes with it at debug level (``--log-level DEBUG``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TypeVar

from deepsalt.config import StageConfig, load_config
from deepsalt.errors import ExitCode, explain
from deepsalt.logs import get_logger, setup_logging

log = get_logger("deepsalt.ray_jobs")
C = TypeVar("C", bound=StageConfig)


def run(
    description: str, model: type[C], work: Callable[[C], bool], argv: Sequence[str] | None = None
) -> int:
    """Parse ``--config URL [--set key=value ...]``, validate, call ``work``; return the exit code."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, help="YAML config: local path or fsspec URL (s3://...)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a field"
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = load_config(model, args.config, args.overrides)
        log.info(
            "job started",
            extra={
                "config_url": args.config,
                "overrides": args.overrides,
                "config_hash": config.config_hash(),
            },
        )
        ok = work(config)
    except (Exception, KeyboardInterrupt) as exc:
        code, reason = explain(exc)
        log.debug("traceback", exc_info=exc)
        log.error("invalid config" if code == ExitCode.CONFIG else "job failed", extra={"reason": reason})
        return int(code)
    log.info("job finished" if ok else "job finished with failures", extra={"ok": ok})
    return int(ExitCode.OK if ok else ExitCode.FAILURE)
