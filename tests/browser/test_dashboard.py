"""A staff admin opens the dashboard of a dataset with real data in every stage: each chart is
drawn (by Chart.js, served from this server) with the numbers counted here straight from the
database, a running automatic pass moves on the page as its images finish, exports are listed
with working download links and can be started from the page, and nothing is fetched from
outside the server. Non-staff users are sent to the admin login."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest

from annotation.models import (
    AnnotatorSession,
    AutomaticPass,
    AutomaticPassImage,
    Export,
    Image,
    Mask,
)
from annotation.services.exports import queue_export
from engine import rle as rle_codec
from registry.models import ModelVersion
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHARTS = ["images", "masks-per-image", "seconds", "annotators", "models"]
BINS = [("1-10", 1, 10), ("11-50", 11, 50), ("51-100", 51, 100), ("101-200", 101, 200)]
BINS += [(">200", 201, 10**9)]
DAYS = [datetime(2026, 3, day, 12, tzinfo=UTC) for day in (2, 3, 5)]
HELDOUT = {
    "noc90": 9.4,
    "noc85": 7.1,
    "miou_1click_top": 0.52,
    "miou_1click_best": 0.61,
    "miou_box": 0.70,
}
BETTER = {"noc90": 6.2, "noc85": 4.8, "miou_1click_top": 0.66, "miou_1click_best": 0.74}
BETTER["miou_box"] = 0.81


def add_masks(image, count, source, stage, **fields):
    """count rectangle masks on image, in one insert."""
    rows = []
    for i in range(count):
        rle = factories.rect_rle(image, i % 40, i % 30, i % 40 + 8, i % 30 + 6)
        rows.append(
            Mask(
                image=image,
                rle=rle,
                bbox=rle_codec.bbox_xywh(rle),
                area=rle_codec.area(rle),
                source=source,
                stage=stage,
                **fields,
            )
        )
    return Mask.objects.bulk_create(rows)


def annotate(image, author, seconds, day):
    """One manual mask by author that took `seconds`, made on `day`."""
    [mask] = add_masks(image, 1, "manual", image.stage, author=author, seconds_spent=seconds)
    Mask.objects.filter(pk=mask.pk).update(created_at=day)


@pytest.fixture
def engine_data(isolated_storage, tiny_model):
    ann, bob, cy = (factories.make_user(name) for name in ("ann", "bob", "cy"))
    dataset = factories.make_dataset("street scenes")
    layout = [  # stage, status, masks
        (1, "done", 3),
        (1, "done", 12),
        (1, "pending", 0),
        (1, "skipped", 0),
        (2, "done", 60),
        (2, "pending", 0),
        (3, "done", 120),
        (3, "pending", 210),
        (3, "pending", 0),
    ]
    images = []
    for seed, (stage, status, _) in enumerate(layout):
        image = factories.add_image(dataset, seed=seed)
        Image.objects.filter(pk=image.pk).update(stage=stage, status=status)
        image.refresh_from_db()
        images.append(image)
    # Stage 1: people's masks, timed, over three days; ann gets faster.
    for seconds, day in [(30, 0), (26, 0), (20, 1)]:
        annotate(images[0], ann, seconds, DAYS[day])
    for i in range(12):
        annotate(images[1], ann if i % 2 else bob, 12 + i, DAYS[1 + i % 2])
    # Stage 2: pre-filled masks, then what annotators added.
    add_masks(images[4], 22, "prefilled", 2, model_version=tiny_model, predicted_iou=0.93)
    for i in range(38):
        annotate(images[4], bob if i % 3 else cy, 8 + i % 5, DAYS[2])
    add_masks(images[6], 120, "automatic", 3, model_version=tiny_model, predicted_iou=0.9)
    add_masks(images[7], 210, "automatic", 3, model_version=tiny_model, predicted_iou=0.9)
    for user, image, active, open_ in [
        (ann, images[0], 1800, False),
        (ann, images[1], 1200, True),  # still annotating: its masks count before Done
        (bob, images[1], 3600, False),
        (cy, images[4], 0, False),
    ]:
        session = AnnotatorSession.objects.create(
            annotator=user,
            image=image,
            stage=image.stage,
            last_heartbeat_at=DAYS[2],
            ended_at=None if open_ else DAYS[2],
            active_seconds=active,
        )
        made = Mask.objects.filter(image=image, author=user).update(session=session)
        # What accept_mask and delete_mask keep: the count is current, open sessions too.
        AnnotatorSession.objects.filter(pk=session.pk).update(masks_made=made)
    tiny_model.metrics = {"heldout": HELDOUT}
    tiny_model.save()
    ModelVersion.objects.create(
        name="round-1", model_type="vit_tiny", checkpoint="round-1.pt", encoder_key="k1",
        round=1, trained_on="stage 1 masks", parent=tiny_model, metrics={"loss": 0.3},
    )  # fmt: skip
    ModelVersion.objects.create(
        name="round-2", model_type="vit_tiny", checkpoint="round-2.pt", encoder_key="k2",
        round=2, trained_on="stage 1-2 masks", parent=tiny_model, metrics={"heldout": BETTER},
    )  # fmt: skip
    run = AutomaticPass.objects.create(
        dataset=dataset, kind="automatic", stage=3, config={}, model_version=tiny_model,
        status="running", total_images=3,
    )  # fmt: skip
    AutomaticPassImage.objects.create(
        automatic_pass=run, image=images[6], status="done", mask_count=120
    )
    for image in images[7:]:
        AutomaticPassImage.objects.create(automatic_pass=run, image=image)
    # A real export, written by the (inline) worker.
    exporter = factories.make_user("exporter", staff=True)
    export = queue_export(dataset, exporter, format="sa1b", filters={"stage": 3}, shard_size=1)
    export.refresh_from_db()
    assert export.status == "done", export.error
    return dataset, run, images


def expected_charts(dataset) -> dict:
    """What each chart must show, counted from the rows without the stats service."""
    images = list(Image.objects.filter(dataset=dataset).values("stage", "status"))
    image_counts = {
        status: [sum(i == {"stage": s, "status": status} for i in images) for s in (1, 2, 3)]
        for status in ("pending", "done", "skipped")
    }
    masks = list(Mask.objects.filter(image__dataset=dataset).values())
    histograms = []
    for stage in (1, 2, 3):
        per_image = Counter(m["image_id"] for m in masks if m["stage"] == stage)
        counts = [sum(lo <= n <= hi for n in per_image.values()) for _, lo, hi in BINS]
        histograms.append([100 * c / len(per_image) for c in counts])
    timed = defaultdict(list)
    for m in masks:
        if m["source"] in ("manual", "model_assisted") and m["seconds_spent"] > 0:
            timed[(m["stage"], m["created_at"].date().isoformat())].append(m["seconds_spent"])
    days = sorted({day for _, day in timed})
    seconds = [
        [sum(timed[(s, d)]) / len(timed[(s, d)]) if timed[(s, d)] else None for d in days]
        for s in sorted({s for s, _ in timed})
    ]
    sessions = defaultdict(lambda: [0.0, 0])
    for row in AnnotatorSession.objects.values("annotator__username", "active_seconds"):
        sessions[row["annotator__username"]][0] += row["active_seconds"]
    for mask in Mask.objects.filter(session__isnull=False).select_related("session__annotator"):
        sessions[mask.session.annotator.username][1] += 1
    rates = {name: made * 3600 / active for name, (active, made) in sessions.items() if active}
    return {
        "images": [image_counts["pending"], image_counts["done"], image_counts["skipped"]],
        "masks-per-image": histograms,
        "seconds": {"labels": days, "data": seconds},
        "annotators": {"labels": sorted(rates), "data": [[rates[n] for n in sorted(rates)]]},
    }


READ_CHARTS = """ids => Object.fromEntries(ids.map(id => {
    const chart = Chart.getChart(document.getElementById('chart-' + id));
    if (!chart) return [id, null];
    const datasets = chart.data.datasets.map(d => ({label: d.label, data: d.data}));
    return [id, {type: chart.config.type, labels: chart.data.labels, datasets: datasets}];
}))"""


DRAWN = (
    "ids => window.Chart && ids.every(id => Chart.getChart(document.getElementById('chart-' + id)))"
)


def outside_requests(requested, live_server):
    return [
        url
        for url in requested
        if url.startswith(("http:", "https:", "ws:", "wss:"))
        and not url.startswith(live_server.url)
    ]


def test_dashboard_draws_every_chart_from_the_database(
    live_server, page, login, screenshot, engine_data, tiny_model
):
    dataset, run, images = engine_data
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    login(page)
    screenshot(page, "admin-index")
    page.click("#dashboard-module a")
    page.click(f"#dataset-list a:text('{dataset.name}')")
    page.wait_for_function(DRAWN, arg=CHARTS)
    screenshot(page)
    charts = page.evaluate(READ_CHARTS, CHARTS)
    expected = expected_charts(dataset)

    assert [d["label"] for d in charts["images"]["datasets"]] == ["pending", "done", "skipped"]
    assert [d["data"] for d in charts["images"]["datasets"]] == expected["images"]
    assert expected["images"] == [[1, 1, 2], [2, 1, 1], [1, 0, 0]]  # the layout above
    histogram = [d["data"] for d in charts["masks-per-image"]["datasets"]]
    assert histogram == [pytest.approx(h) for h in expected["masks-per-image"]]
    assert histogram[2] == [0, 0, 0, 50, 50]  # 120 and 210 masks
    assert charts["seconds"]["labels"] == expected["seconds"]["labels"]
    assert [d["data"] for d in charts["seconds"]["datasets"]] == [
        pytest.approx(row) for row in expected["seconds"]["data"]
    ]
    assert len(charts["seconds"]["datasets"]) == 2  # stages 1 and 2 have timed masks
    assert charts["annotators"]["labels"] == expected["annotators"]["labels"] == ["ann", "bob"]
    assert [d["data"] for d in charts["annotators"]["datasets"]] == [
        pytest.approx(row) for row in expected["annotators"]["data"]
    ]
    models = charts["models"]
    assert models["labels"] == [tiny_model.name, "round-1 (not evaluated)", "round-2"]
    by_label = {d["label"]: d["data"] for d in models["datasets"]}
    assert by_label["NoC@90 (clicks)"] == [9.4, None, 6.2]
    assert by_label["mIoU, box"] == [0.70, None, 0.81]
    assert "not evaluated" in page.locator("#model-table").inner_text()
    headers = page.locator("#model-table thead th").all_text_contents()
    cells = page.locator("#model-table tbody tr", has_text="round-2").locator("th, td")
    over = dict(zip(headers, cells.all_text_contents(), strict=True))
    assert (over["mIoU box"], over["NoC@90"], over["mIoU 5 clicks"]) == ("0.810", "6.20", "–")
    assert "cy" in page.locator("#annotator-table").inner_text()  # listed, with no active time

    progress = page.locator(f"#passes li[data-pass='{run.pk}']")
    assert "1 / 3 images done, 120 masks so far" in progress.inner_text()
    # The worker finishes the 210-mask image: the page, polling the API, follows.
    AutomaticPassImage.objects.filter(automatic_pass=run, image=images[7]).update(
        status="done", mask_count=210
    )
    page.wait_for_function(
        "id => document.querySelector(`#passes li[data-pass='${id}']`)"
        ".textContent.includes('2 / 3 images done, 330 masks so far')",
        arg=run.pk,
    )
    screenshot(page, "pass-progressed")
    assert outside_requests(requested, live_server) == []


def test_exports_are_listed_downloaded_and_started_from_the_page(
    live_server, page, login, screenshot, engine_data
):
    dataset, _, _ = engine_data
    [existing] = Export.objects.filter(dataset=dataset)
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    login(page)
    page.goto(f"{live_server.url}/admin/dashboard/datasets/{dataset.pk}/")
    row = page.locator(f"#export-table tr[data-export='{existing.pk}']")
    assert "done" in row.inner_text() and "stage=3" in row.inner_text()
    assert row.locator("a").all_inner_texts() == ["manifest.json", "sa_000000.tar", "sa_000001.tar"]
    manifest = page.request.get(live_server.url + row.locator("a").first.get_attribute("href"))
    assert manifest.status == 200
    assert json.loads(manifest.body())["masks"] == 330
    shard = page.request.get(live_server.url + row.locator("a").nth(2).get_attribute("href"))
    assert shard.status == 200 and len(shard.body()) > 0

    # Bad input: the API's message is shown and nothing is queued.
    page.fill("input[name=min_predicted_iou]", "1.5")
    page.click("#export-form button[type=submit]")
    message = page.locator("#export-message")
    message.filter(has_text="refused").wait_for()
    assert "min_predicted_iou" in message.inner_text()
    assert Export.objects.filter(dataset=dataset).count() == 1
    screenshot(page, "refused")

    page.fill("input[name=min_predicted_iou]", "")
    page.select_option("select[name=format]", "coco")
    page.select_option("#export-form select[name=stage]", "1")
    page.select_option("#export-form select[name=ids]", "platform")
    page.click("#export-form button[type=submit]")
    # The inline worker has written it by the time the page asks: "queued" became its state.
    message.filter(has_text="done").wait_for()
    new = Export.objects.filter(dataset=dataset).exclude(pk=existing.pk).get()
    assert message.inner_text() == f"Export #{new.pk} done: download instances.json"
    assert message.locator("a").get_attribute("href") == f"/api/exports/{new.pk}/download/"
    options = {"ids": "platform", "coco_format": "instances"}
    assert (new.format, new.filters) == ("coco", {"stage": 1, **options})
    link = page.locator(f"#export-table tr[data-export='{new.pk}'] a:text('instances.json')")
    link.wait_for()
    coco = json.loads(page.request.get(live_server.url + link.get_attribute("href")).body())
    stage_1 = Mask.objects.filter(image__dataset=dataset, stage=1)
    assert sorted(a["id"] for a in coco["annotations"]) == sorted(m.pk for m in stage_1)
    screenshot(page)
    assert outside_requests(requested, live_server) == []


def test_an_empty_dataset_shows_empty_states(live_server, page, login, screenshot, db):
    dataset = factories.make_dataset("nothing yet")
    login(page)
    page.goto(f"{live_server.url}/admin/dashboard/datasets/{dataset.pk}/")
    page.locator("#updated").filter(has_text="Updated").wait_for()
    screenshot(page)
    drawn = page.evaluate(READ_CHARTS, CHARTS)
    assert drawn == {name: None for name in CHARTS}
    for card in [
        "images",
        "masks-per-image",
        "seconds",
        "annotators",
        "labels",
        "passes",
        "exports",
    ]:
        assert page.locator(f"[data-card='{card}'] .dash-empty").is_visible(), card
    assert page.locator("#models-none").is_visible()


def test_the_index_lists_datasets_with_their_counts(live_server, page, login, engine_data):
    dataset, _, _ = engine_data
    login(page)
    page.goto(f"{live_server.url}/admin/dashboard/")
    cells = page.locator("#dataset-list tbody tr").first.locator("td").all_inner_texts()
    assert cells == ["9", "4", "2", "3", str(Mask.objects.filter(image__dataset=dataset).count())]


def test_non_staff_users_are_sent_to_the_admin_login(live_server, page, client, db):
    dataset = factories.make_dataset("private")
    member = factories.make_user("member")
    client.force_login(member)
    for url in ["/admin/dashboard/", f"/admin/dashboard/datasets/{dataset.pk}/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=")
    page.goto(f"{live_server.url}/admin/dashboard/datasets/{dataset.pk}/")
    assert page.url.startswith(f"{live_server.url}/admin/login/")
    assert page.locator("#chart-images").count() == 0
