"""A private Meltano system directory per benchmark run.

Meltano writes each plugin's catalog, config and state files under
``.meltano/run/<plugin>/``; two ``meltano run`` of one project at the same time (a bench
and someone's integration tests) overwrite each other's ``tap.properties.json``. Pointing
``MELTANO_SYS_DIR_ROOT`` at a fresh directory whose plugin installations link to the
project's keeps every run's files apart and runs the very same plugin versions.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN_KINDS = ("extractors", "loaders")


def private_sys_dir(workdir: Path) -> dict[str, str]:
    """Environment for Meltano runs whose system directory is ``workdir/.meltano``."""
    sys_dir = workdir / ".meltano"
    sys_dir.mkdir(exist_ok=True)
    for kind in PLUGIN_KINDS:
        link = sys_dir / kind
        if not link.exists():
            link.symlink_to(REPO / ".meltano" / kind, target_is_directory=True)
    return {"MELTANO_SYS_DIR_ROOT": str(sys_dir)}
