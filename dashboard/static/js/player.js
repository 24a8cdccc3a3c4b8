// A recording in the page: its thumbnail, a player (an MP4 or image straight from the dashboard's Range-capable
// route; an HLS recording through hls.js reading its playlist and segments), and a download link (a DASH
// recording's manifest.mpd).

import Hls from "./vendor/hls.light.min.mjs";
import { el } from "./dom.js";

function route(video) {
  return `/api/videos/${encodeURIComponent(video.video_id)}`;
}

// hls.js feeds Media Source Extensions; a browser that plays HLS itself (Safari) gets the playlist directly.
function attachHls(player, url) {
  if (Hls.isSupported()) {
    const hls = new Hls({ enableWorker: false });
    hls.loadSource(url);
    hls.attachMedia(player);
    player.addEventListener("emptied", () => hls.destroy(), { once: true });
  } else {
    player.src = url;
  }
}

export function recordingView(video) {
  const base = route(video);
  const parts = [];
  if (video.thumbnail_path) {
    parts.push(el("img", { class: "thumbnail", src: `${base}/thumbnail`, alt: "thumbnail of the recording" }));
  }
  if (video.format === "mp4") {
    parts.push(el("video", { class: "player", controls: true, preload: "metadata", src: `${base}/media` }));
  } else if (video.format === "hls") {
    const player = el("video", { class: "player", controls: true, preload: "metadata" });
    attachHls(player, `${base}/files/index.m3u8`);
    parts.push(player);
  }
  if (video.format === "hls") {
    parts.push(el("a", { class: "download", href: `${base}/files/index.m3u8?download=1`, text: "Download playlist" }));
  } else if (video.format === "dash") {
    // No DASH player is vendored: the MPD (and through it each segment) is offered; OUTPUT_FORMAT_MP4 plays here.
    parts.push(el("a", { class: "download", href: `${base}/files/manifest.mpd?download=1`, text: "Download MPD" }));
  } else {
    parts.push(el("a", { class: "download", href: `${base}/media?download=1`, download: "", text: "Download" }));
  }
  return el("div", { class: "recording", dataset: { format: video.format } }, ...parts);
}
