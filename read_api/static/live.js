// Live updates: the read API streams the read models' position (server-sent events);
// when it moves, the board refetches its rows and a job page redraws itself.
(function () {
  const marker = document.getElementById("live");
  if (!marker || !window.EventSource) return;
  let seen = Number(marker.dataset.position || 0);
  let pending = null;
  const table = document.querySelector("[data-live-rows]");
  const refresh = async () => {
    pending = null;
    if (table) {
      const response = await fetch(table.dataset.liveRows, { credentials: "same-origin" });
      if (response.ok) document.getElementById("rows").innerHTML = await response.text();
      marker.classList.add("pulse");
      setTimeout(() => marker.classList.remove("pulse"), 400);
    } else if (marker.dataset.job) {
      // a job page redraws only when its own job changed, and not under someone's typing
      const response = await fetch(`/api/jobs/${marker.dataset.job}`, { credentials: "same-origin" });
      if (!response.ok) return;
      const { job } = await response.json();
      const typing = document.activeElement && ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
      if (String(job.version) !== marker.dataset.version && !typing) window.location.replace(window.location.pathname);
    }
  };
  const source = new EventSource("/api/live");
  source.addEventListener("position", (event) => {
    const position = Number(event.data);
    marker.dataset.state = "connected";
    if (position > seen) {
      seen = position;
      if (!pending) pending = setTimeout(refresh, 50);
    }
  });
  source.onerror = () => { marker.dataset.state = "reconnecting"; };
})();
