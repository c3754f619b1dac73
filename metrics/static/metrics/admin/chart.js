/* Draws the chart page's series with uPlot from the JSON the page carries (#chart-data).
   Nulls stay gaps (spanGaps off); thin buckets get an orange dot; "at" a red line. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const target = document.getElementById("chart");
  const spec = data.format;
  const numbers = new Intl.NumberFormat("en-US", {
    minimumFractionDigits: spec.min,
    maximumFractionDigits: spec.max,
  });
  const show = (value) => (value == null ? "—" : numbers.format(value) + spec.suffix);
  const thin = data.y.map((value, i) => (data.thin[i] ? value : null));

  const series = [
    {},
    { label: data.label, stroke: "#417690", width: 2, spanGaps: false, value: (u, v) => show(v) },
    {
      label: "thin bucket",
      stroke: "#e67e22",
      fill: "#e67e22",
      paths: () => null,
      points: { show: true, size: 7, fill: "#e67e22" },
      value: (u, v) => (v == null ? "" : "coverage < 1"),
    },
  ];
  const columns = [data.x, data.y, thin];
  if (data.compare) {
    series.push({
      label: "previous year",
      stroke: "#9aa7b0",
      width: 1.5,
      dash: [6, 4],
      spanGaps: false,
      value: (u, v) => show(v),
    });
    columns.push(data.compare);
  }

  const drawAt = (u) => {
    if (data.at == null) return;
    const x = Math.round(u.valToPos(data.at, "x", true));
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "#c0392b";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.restore();
  };

  // Within the content column and the window, whichever is narrower.
  const width = () => {
    const box = target.getBoundingClientRect();
    return Math.max(320, Math.min(box.width, window.innerWidth - box.left - 40, 1100));
  };
  const plot = new uPlot(
    {
      width: width(),
      height: 340,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      series: series,
      axes: [{}, { size: 90, values: (u, ticks) => ticks.map(show) }],
      hooks: { draw: [drawAt] },
    },
    columns,
    target
  );
  // The column settles after the sidebar's own script runs; follow it.
  new ResizeObserver(() => {
    if (Math.abs(plot.width - width()) > 1) plot.setSize({ width: width(), height: 340 });
  }).observe(target);

  // Choosing a bucket redraws at once.
  document.querySelectorAll("#chart-controls input[name=bucket]").forEach((input) =>
    input.addEventListener("change", () => input.form.submit())
  );
})();
