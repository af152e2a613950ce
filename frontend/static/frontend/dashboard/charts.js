/* The dashboard's charts, each drawn from the answer of GET /api/datasets/{id}/stats/ (see
   annotation/services/stats.py for its parts). Every chart is a card with a canvas and an empty
   state; drawChart() creates the Chart.js instance the first time and updates it in place on
   later polls, so the page does not flicker while a pass runs. */
(function () {
  "use strict";

  const STAGE_COLOURS = { 1: "#417690", 2: "#e0a030", 3: "#5a9a50" };
  const STATUS_COLOURS = { pending: "#e0a030", done: "#417690", skipped: "#b8b8b8" };
  const METRICS = {
    noc90: { label: "NoC@90 (clicks)", axis: "clicks", colour: "#ba2121" },
    noc85: { label: "NoC@85 (clicks)", axis: "clicks", colour: "#e07b39" },
    miou_1click_top: { label: "mIoU, 1 click (top-scored)", axis: "iou", colour: "#417690" },
    miou_1click_best: { label: "mIoU, 1 click (best of 3)", axis: "iou", colour: "#79aec8" },
    miou_5clicks: { label: "mIoU, 5 clicks", axis: "iou", colour: "#8a5fb0" },
    miou_10clicks: { label: "mIoU, 10 clicks", axis: "iou", colour: "#b07fd0" },
    miou_box: { label: "mIoU, box", axis: "iou", colour: "#5a9a50" },
  };

  function themeColour(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function applyTheme() {
    Chart.defaults.color = themeColour("--body-quiet-color", "#666");
    Chart.defaults.borderColor = themeColour("--hairline-color", "#e8e8e8");
    Chart.defaults.font.family = themeColour("--font-family-primary", "sans-serif");
    // Numbers for people reading them now, not a show: no animation on creation or polls.
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;
  }

  /* Show the card's chart (created or updated from config) or, with no config, its empty
     state. */
  function drawChart(card, canvas, config) {
    const empty = card.querySelector(".dash-empty");
    const holder = canvas.parentElement;
    const existing = Chart.getChart(canvas);
    if (!config) {
      if (existing) existing.destroy();
      holder.hidden = true;
      empty.hidden = false;
      return null;
    }
    empty.hidden = true;
    holder.hidden = false;
    if (existing && existing.config.type === config.type) {
      existing.data = config.data;
      existing.options = config.options;
      existing.update("none");
      return existing;
    }
    if (existing) existing.destroy();
    return new Chart(canvas, config);
  }

  function axisTitle(text) {
    return { display: true, text: text };
  }

  function stageLabel(page, stage) {
    return `Stage ${stage}: ${page.stages[stage]}`;
  }

  function imagesConfig(stats, page) {
    if (!stats.images.total) return null;
    const stages = Object.keys(page.stages);
    return {
      type: "bar",
      data: {
        labels: stages.map((stage) => stageLabel(page, stage)),
        datasets: page.statuses.map((status) => ({
          label: status,
          data: stages.map((stage) => stats.images.by_stage[stage][status] || 0),
          backgroundColor: STATUS_COLOURS[status],
        })),
      },
      options: {
        scales: {
          x: { stacked: true },
          y: { stacked: true, beginAtZero: true, title: axisTitle("images"), ticks: { precision: 0 } },
        },
      },
    };
  }

  /* Percent of a stage's images (those with masks from it) in each bin, as the SA-1B paper
     draws it; the counts are kept on the dataset for the tooltip. */
  function masksPerImageConfig(stats, page) {
    const stages = Object.keys(page.stages).filter((s) => stats.masks_per_image[s].images > 0);
    if (!stages.length) return null;
    return {
      type: "bar",
      data: {
        labels: page.bins.map((bin) => `${bin} masks`),
        datasets: stages.map((stage) => {
          const histogram = stats.masks_per_image[stage];
          return {
            label: `Stage ${stage} (${histogram.images} images, ${histogram.mean.toFixed(1)} masks per image)`,
            data: page.bins.map((bin) => (100 * histogram.bins[bin]) / histogram.images),
            counts: page.bins.map((bin) => histogram.bins[bin]),
            backgroundColor: STAGE_COLOURS[stage],
          };
        }),
      },
      options: {
        scales: { y: { beginAtZero: true, title: axisTitle("% of images") } },
        plugins: {
          tooltip: {
            callbacks: {
              label: (item) =>
                `${item.dataset.label.split(" (")[0]}: ${item.dataset.counts[item.dataIndex]} images (${item.parsed.y.toFixed(1)}%)`,
            },
          },
        },
      },
    };
  }

  function secondsConfig(stats, page) {
    const rows = stats.seconds_per_mask;
    if (!rows.length) return null;
    const days = [...new Set(rows.map((row) => row.day))].sort();
    const stages = [...new Set(rows.map((row) => String(row.stage)))].sort();
    return {
      type: "line",
      data: {
        labels: days,
        datasets: stages.map((stage) => {
          const byDay = new Map(rows.filter((r) => String(r.stage) === stage).map((r) => [r.day, r]));
          return {
            label: stageLabel(page, stage),
            data: days.map((day) => (byDay.has(day) ? byDay.get(day).seconds_per_mask : null)),
            masks: days.map((day) => (byDay.has(day) ? byDay.get(day).masks : 0)),
            borderColor: STAGE_COLOURS[stage],
            backgroundColor: STAGE_COLOURS[stage],
            spanGaps: true,
            tension: 0.2,
          };
        }),
      },
      options: {
        scales: { y: { beginAtZero: true, title: axisTitle("seconds per mask") } },
        plugins: {
          tooltip: {
            callbacks: {
              label: (item) =>
                `${item.dataset.label}: ${item.parsed.y.toFixed(1)} s per mask (${item.dataset.masks[item.dataIndex]} masks)`,
            },
          },
        },
      },
    };
  }

  function annotatorsConfig(stats) {
    const rows = stats.annotators.filter((row) => row.masks_per_hour !== null);
    if (!rows.length) return null;
    return {
      type: "bar",
      data: {
        labels: rows.map((row) => row.username),
        datasets: [
          {
            label: "masks per hour",
            data: rows.map((row) => row.masks_per_hour),
            backgroundColor: "#417690",
          },
        ],
      },
      options: {
        indexAxis: "y",
        scales: { x: { beginAtZero: true, title: axisTitle("masks per active hour") } },
        plugins: { legend: { display: false } },
      },
    };
  }

  /* One point per model version, oldest first; versions never evaluated keep their place on
     the axis with gaps, so rounds line up. */
  function modelsConfig(stats, page) {
    const versions = stats.model_versions;
    if (!versions.some((version) => version.heldout)) return null;
    return {
      type: "line",
      data: {
        labels: versions.map((v) => (v.heldout ? v.name : `${v.name} (not evaluated)`)),
        datasets: page.heldout_keys.map((key) => ({
          label: METRICS[key].label,
          data: versions.map((v) => (v.heldout ? v.heldout[key] : null)),
          yAxisID: METRICS[key].axis,
          borderColor: METRICS[key].colour,
          backgroundColor: METRICS[key].colour,
          borderDash: METRICS[key].axis === "clicks" ? [6, 3] : [],
          spanGaps: true,
        })),
      },
      options: {
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { labels: { usePointStyle: true } } },
        scales: {
          clicks: { position: "left", beginAtZero: true, title: axisTitle("clicks (lower is better)") },
          iou: {
            position: "right",
            min: 0,
            max: 1,
            title: axisTitle("mIoU (higher is better)"),
            grid: { drawOnChartArea: false },
          },
        },
      },
    };
  }

  window.sadeCharts = {
    applyTheme,
    drawChart,
    configs: {
      images: imagesConfig,
      "masks-per-image": masksPerImageConfig,
      seconds: secondsConfig,
      annotators: annotatorsConfig,
      models: modelsConfig,
    },
  };
})();
