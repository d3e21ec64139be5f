/* Jauge banner loader: <script src="https://jauge.example/embed/<slug>.js" async></script>
 * Renders the live banner where the script stands, isolated from the page's CSS (shadow root,
 * or an auto-sized iframe with data-mode="iframe"), and keeps it live with or without htmx.
 * Options on the <script>: data-variant="banner|bar|compact", data-lang="fr|en",
 * data-mode="shadow|iframe|relay" (relay: draw nothing, only serve the page's own Jauge iframes).
 *
 * After a gift, the thank-you page links back to the article with #jauge-thanks=<slug>.<unix expiry>.
 * The loader keeps it in this site's localStorage ("jauge-thanks:<slug>" → expiry in ms; no cookie,
 * nothing sent anywhere), removes it from the address bar, and until it expires asks Jauge for the
 * "thanks" variant (« Merci ! » and the live total) instead of the ask; its "show again" button
 * forgets it. Frames cannot read this site's storage: they post their campaign's slug and the
 * button's click to the page ({jauge: "slug"|"show-again", slug}), and the loader sets their variant.
 * No framework, no build step. The server inlines the stylesheet below. */
(function () {
  "use strict";
  var CSS = "__JAUGE_CSS__";
  var THANKS = "jauge-thanks";
  var THANKS_MAX_MS = 367 * 86400 * 1000;
  var script = document.currentScript;
  if (!script || !script.src) { return; }
  var src = new URL(script.src, document.baseURI);
  var match = src.pathname.match(/^(.*\/embed\/)([^/]+)\.js$/);
  if (!match) { return; }
  var base = src.origin + match[1];
  var slug = match[2];
  var params = new URLSearchParams();
  ["variant", "lang"].forEach(function (name) {
    var value = script.getAttribute("data-" + name);
    if (value) { params.set(name, value); }
  });
  // The variant the publisher chose: the one shown whenever the reader is not being thanked.
  var ask = params.get("variant") || "";

  // --- The thank-you marker, kept per campaign in this site's localStorage. ---
  function storage() {
    try { return window.localStorage; } catch (e) { return null; }  // blocked storage: always ask
  }

  function thankedUntil(name) {
    var store = storage();
    if (!store || !name) { return 0; }
    try {
      var until = +store.getItem(THANKS + ":" + name) || 0;
      if (until && until <= Date.now()) { store.removeItem(THANKS + ":" + name); until = 0; }
      return until;
    } catch (e) { return 0; }
  }

  function anyThanked() {
    var store = storage();
    if (!store) { return false; }
    try {
      for (var i = store.length - 1; i >= 0; i--) {
        var key = store.key(i);
        if (key && key.indexOf(THANKS + ":") === 0 && thankedUntil(key.slice(THANKS.length + 1))) { return true; }
      }
    } catch (e) { /* storage went away: nothing thanked */ }
    return false;
  }

  function forget(name) {
    var store = storage();
    try { if (store) { store.removeItem(THANKS + ":" + name); } } catch (e) { /* nothing kept */ }
    // Every banner on this page follows at once (a `storage` event only reaches other pages).
    window.dispatchEvent(new CustomEvent("jauge:thanks"));
  }

  function takeMarker() {
    var found = /^#jauge-thanks=([A-Za-z0-9_-]{1,80})\.(\d{1,12})$/.exec(location.hash);
    if (!found) { return false; }
    var until = +found[2] * 1000;
    var store = storage();
    var kept = false;
    if (store && until > Date.now() && until <= Date.now() + THANKS_MAX_MS) {
      try { store.setItem(THANKS + ":" + found[1], String(until)); kept = true; } catch (e) { /* full or blocked */ }
    }
    // Out of the address bar: a copied or shared link must not thank its next reader.
    if (window.history && history.replaceState) {
      history.replaceState(history.state, "", location.pathname + location.search);
    }
    return kept;
  }

  // The variant to ask for: `name` is the campaign shown (for `current`, known after one answer).
  function wanted(name) {
    var thanked = name ? thankedUntil(name) : anyThanked();
    return thanked ? "thanks" : ask;
  }

  // Jauge frames on this page (the loader's own and plain <iframe> snippets): they say which campaign
  // they show and relay the "show again" click; the page, which holds the marker, sets their variant.
  function frameFor(source) {
    var frames = document.getElementsByTagName("iframe");
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].contentWindow === source) { return frames[i]; }
    }
    return null;
  }

  function steer(frame) {
    var name = frame.getAttribute("data-jauge-slug");
    var url;
    try { url = new URL(frame.src, document.baseURI); } catch (e) { return; }
    if (url.origin !== src.origin || !name) { return; }
    if (!frame.hasAttribute("data-jauge-ask")) {
      frame.setAttribute("data-jauge-ask", url.searchParams.get("variant") || "");
    }
    var chosen = frame.getAttribute("data-jauge-ask");
    var variant = thankedUntil(name) ? "thanks" : (chosen === "thanks" ? "" : chosen);
    if ((url.searchParams.get("variant") || "") === variant) { return; }
    if (variant) { url.searchParams.set("variant", variant); } else { url.searchParams.delete("variant"); }
    frame.src = url.href;
  }

  function steerAll() {
    var frames = document.querySelectorAll("iframe[data-jauge-slug]");
    for (var i = 0; i < frames.length; i++) { steer(frames[i]); }
  }

  function relay(event) {
    if (event.origin !== src.origin) { return; }
    var data = event.data || {};
    if ((data.jauge !== "slug" && data.jauge !== "show-again") || typeof data.slug !== "string") { return; }
    var frame = frameFor(event.source);
    if (!frame) { return; }
    if (data.jauge === "slug") {
      frame.setAttribute("data-jauge-slug", data.slug);
      steer(frame);
    } else if (data.jauge === "show-again") {
      frame.setAttribute("data-jauge-slug", data.slug);
      forget(data.slug);
    }
  }

  takeMarker();
  // One relay per page and Jauge origin, however many loaders stand on it.
  var relayKey = "__jaugeRelay:" + src.origin;
  if (!window[relayKey]) {
    window[relayKey] = true;
    window.addEventListener("message", relay);
    window.addEventListener("jauge:thanks", steerAll);
    // The thank-you link may lead back to this very page (only its fragment differs): no reload then.
    window.addEventListener("hashchange", function () {
      if (takeMarker()) { window.dispatchEvent(new CustomEvent("jauge:thanks")); }
    });
    // Another tab of the site took a marker or showed the ask again: follow it here too.
    window.addEventListener("storage", function (event) {
      if (event.key === null || event.key.indexOf(THANKS + ":") === 0) {
        window.dispatchEvent(new CustomEvent("jauge:thanks"));
      }
    });
  }

  var mode = script.getAttribute("data-mode");
  if (mode === "relay") { return; }

  // A custom element, not a div: the article's `div { … }` rules cannot reach the host, and the
  // inline reset stops its inherited styles (font, colour, letter-spacing) at the shadow boundary.
  var host = document.createElement("jauge-banner");
  host.style.cssText = "all:initial;display:block";
  script.parentNode.insertBefore(host, script);
  mode = mode || (host.attachShadow ? "shadow" : "iframe");
  // `current` is whichever campaign is live: its slug comes with each answer.
  var known = slug === "current" ? null : slug;

  function withVariant(path, variant) {
    var query = new URLSearchParams(params);
    if (variant) { query.set("variant", variant); } else { query.delete("variant"); }
    var text = query.toString();
    return base + slug + path + (text ? "?" + text : "");
  }

  function attribute(root) {
    var links = root.querySelectorAll("[data-jauge-give]");
    for (var i = 0; i < links.length; i++) {
      // Keeps the link's own query (?lang=en on an English banner).
      var give = new URL(links[i].href);
      give.searchParams.set("article", location.href);
      links[i].href = give.href;
    }
  }

  function whenVisible(callback) {
    if (document.visibilityState !== "hidden") { callback(); return; }
    document.addEventListener("visibilitychange", function again() {
      if (document.visibilityState === "hidden") { return; }
      document.removeEventListener("visibilitychange", again);
      callback();
    });
  }

  if (mode === "iframe") {
    var frame = document.createElement("iframe");
    if (known) { frame.setAttribute("data-jauge-slug", known); }
    frame.setAttribute("data-jauge-ask", ask);
    frame.src = withVariant("/frame/", wanted(known));
    frame.title = script.getAttribute("data-title") || "Jauge";
    frame.loading = "lazy";
    frame.setAttribute("scrolling", "no");
    frame.style.cssText = "border:0;width:100%;height:0;display:block;overflow:hidden";
    window.addEventListener("message", function (event) {
      if (event.source !== frame.contentWindow || event.origin !== src.origin) { return; }
      var data = event.data || {};
      if (data.jauge === "height") { frame.style.height = Math.max(0, +data.height || 0) + "px"; }
    });
    frame.addEventListener("load", function () {
      frame.contentWindow.postMessage({jauge: "article", url: location.href}, src.origin);
    });
    host.appendChild(frame);
    return;
  }

  var root = host.attachShadow({mode: "open"});
  var shown = null;
  var timer = null;
  var generation = 0;

  function schedule(seconds) {
    clearTimeout(timer);
    timer = setTimeout(function () { whenVisible(load); }, seconds * 1000);
  }

  function load() {
    var mine = ++generation;
    var variant = wanted(known);
    var url = withVariant("/", variant);
    // "no-cache" revalidates with the stored ETag: an unchanged banner costs a 304.
    fetch(url, {cache: "no-cache", credentials: "omit", mode: "cors"})
      .then(function (response) {
        // 404 (no such campaign) or 400 (bad data-variant/data-lang): retrying will not help.
        if (response.status >= 400 && response.status < 500) {
          if (window.console) { console.warn("Jauge: " + url + " answered " + response.status); }
          return null;
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html === null || mine !== generation) { return; }
        var resolved = /data-jauge-slug="([^"]+)"/.exec(html);
        if (resolved && slug === "current") { known = resolved[1]; }
        // `current` was a guess until now: ask again, at once, for what this campaign wants.
        if (wanted(known) !== variant) { load(); return; }
        if (html !== shown) {
          shown = html;
          root.innerHTML = "<style>" + CSS + "</style>" + html;
          attribute(root);
        }
        // The markup says whether to keep polling: a closed campaign has no data-jauge-poll.
        var banner = root.querySelector("[data-jauge-poll]");
        if (banner) { schedule(Math.max(2, +banner.getAttribute("data-jauge-poll") || 10)); }
      })
      .catch(function () { if (mine === generation) { schedule(60); } });
  }

  root.addEventListener("click", function (event) {
    var again = event.target.closest && event.target.closest("[data-jauge-show-again]");
    if (again) { forget(known || slug); }
  });
  window.addEventListener("jauge:thanks", function () {
    clearTimeout(timer);
    load();
  });

  load();
})();
