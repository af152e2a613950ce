"""python -m deploy.healthcheck beat: the compose health check of Celery beat. (The worker
check runs against a real worker in tests/integration/test_worker_health.py, the web check
through the proxy in tests/deploy/test_proxy.py.)"""

import os
import time

from deploy.healthcheck import main


def test_beat_is_healthy_while_it_keeps_writing_its_schedule(tmp_path, capsys):
    schedule = tmp_path / "celerybeat-schedule"
    (tmp_path / "celerybeat-schedule.db").write_bytes(b"shelve")  # dbm may add a suffix

    assert main(["beat", str(schedule), "600"]) == 0

    old = time.time() - 601
    os.utime(tmp_path / "celerybeat-schedule.db", (old, old))
    assert main(["beat", str(schedule), "600"]) == 1
    assert "last written 60" in capsys.readouterr().err


def test_beat_without_a_schedule_file_is_unhealthy(tmp_path, capsys):
    assert main(["beat", str(tmp_path / "celerybeat-schedule")]) == 1
    assert "no beat schedule file" in capsys.readouterr().err
