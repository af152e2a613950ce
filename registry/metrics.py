"""The held-out metric names a version's evaluation reports (computed by modeltrain.metrics, shown
by the dashboard and stored in ModelVersion.metrics["heldout"]). Plain names, no Django."""

# mIoU after this many clicks is reported besides NoC: it shows whether later clicks help even
# when no object reaches a NoC threshold (a cold-start model's NoC sits at the click limit).
MIOU_AT_CLICKS = (5, 10)

# The numbers every evaluation summary reports besides its counts, in the order the dashboard
# charts them (annotation.services.stats): clicks to reach 90% and 85% IoU, mIoU of the first
# click's top-scored and best candidate, after 5 and 10 clicks, and from a box.
SUMMARY_METRICS = (
    "noc90",
    "noc85",
    "miou_1click_top",
    "miou_1click_best",
    *(f"miou_{k}clicks" for k in MIOU_AT_CLICKS),
    "miou_box",
)

# How a table names each summary number, one entry per name above and in its order: the
# dashboard's held-out table draws its headers and its cells from this one list.
SUMMARY_LABELS = {
    "noc90": "NoC@90",
    "noc85": "NoC@85",
    "miou_1click_top": "mIoU 1 click (top)",
    "miou_1click_best": "mIoU 1 click (best)",
    **{f"miou_{k}clicks": f"mIoU {k} clicks" for k in MIOU_AT_CLICKS},
    "miou_box": "mIoU box",
}
