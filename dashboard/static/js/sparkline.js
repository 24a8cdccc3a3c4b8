// A tiny throughput chart on a canvas (no inline SVG or style needed, so the CSP stays strict).

export function drawSparkline(canvas, samples) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 80;
  const height = canvas.clientHeight || 20;
  if (canvas.width !== width * ratio || canvas.height !== height * ratio) {
    canvas.width = width * ratio;
    canvas.height = height * ratio;
  }
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  canvas.dataset.samples = String(samples.length);
  if (samples.length < 2) {
    return;
  }
  const top = Math.max(...samples) || 1;
  const step = width / (samples.length - 1);
  context.beginPath();
  samples.forEach((value, index) => {
    const x = index * step;
    const y = height - 1 - (value / top) * (height - 2);
    if (index === 0) {
      context.moveTo(x, y);
    } else {
      context.lineTo(x, y);
    }
  });
  context.lineWidth = 1.5;
  context.strokeStyle = getComputedStyle(canvas).color;
  context.stroke();
}
