"""What the Ray job entrypoints share: arguments, logging, config loading and exit codes.

Exit codes follow ``deepsalt.cli``: 0 done, 1 failed (the job server reports FAILED), 2 invalid
config (nothing was started). Unexpected exceptions propagate with their traceback (exit 1).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TypeVar

from deepsalt.config import StageConfig, load_config
from deepsalt.errors import ConfigError, DeepSaltError
from deepsalt.logs import get_logger, setup_logging

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2

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
    except ConfigError as exc:
        log.error("invalid config", extra={"reason": str(exc)})
        return EXIT_CONFIG
    except DeepSaltError as exc:
        log.error("job failed", extra={"reason": str(exc)})
        return EXIT_FAILURE
    log.info("job finished" if ok else "job finished with failures", extra={"ok": ok})
    return EXIT_OK if ok else EXIT_FAILURE
