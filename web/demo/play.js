// Demo page logic: written against the Amazon IVS web player API only, so it
// runs unchanged with amazon-ivs-player.min.js. No inline script (CSP: script-src 'self').
(function () {
  'use strict';
  var app = document.getElementById('app');
  var url = new URLSearchParams(location.search).get('url') || app.getAttribute('data-playback-url') || '';
  if (url.indexOf('{{') === 0) url = '';
  var $ = function (id) { return document.getElementById(id); };
  var showError = function (msg) { $('error').hidden = false; $('error').textContent = msg; };

  if (!IVSPlayer.isPlayerSupported) { showError('This browser cannot play this stream.'); return; }
  if (!url) { showError('No playback URL: add ?url=PLAYBACK_URL'); return; }

  var PlayerState = IVSPlayer.PlayerState;
  var PlayerEventType = IVSPlayer.PlayerEventType;
  var player = IVSPlayer.create();
  // Exposed for debugging and for the Chromium test harness.
  window.player = player;
  window.playerEvents = [];
  player.attachHTMLVideoElement($('video'));

  var log = function (type) {
    return function (payload) {
      window.playerEvents.push({ t: Date.now(), type: type, payload: payload === undefined ? null : payload });
    };
  };
  Object.keys(PlayerEventType).forEach(function (k) {
    if (k !== 'TIME_UPDATE' && k !== 'BUFFER_UPDATE') player.addEventListener(PlayerEventType[k], log(PlayerEventType[k]));
  });

  player.addEventListener(PlayerEventType.STATE_CHANGED, function (state) {
    $('state').textContent = state;
    $('toggle').textContent = state === PlayerState.PLAYING || state === PlayerState.BUFFERING ? 'Pause' : 'Play';
  });
  player.addEventListener(PlayerState.READY, function () {
    var select = $('quality');
    select.length = 1;
    player.getQualities().forEach(function (q) {
      var o = document.createElement('option');
      o.value = q.name;
      o.textContent = q.name + (q.bitrate ? ' (' + Math.round(q.bitrate / 1000) + ' kbps)' : '');
      select.appendChild(o);
    });
  });
  player.addEventListener(PlayerEventType.QUALITY_CHANGED, function (q) {
    if (!player.isAutoQualityMode()) $('quality').value = q.name;
  });
  player.addEventListener(PlayerEventType.ERROR, function (err) {
    showError(err.type + ' ' + err.code + ' (' + err.source + '): ' + err.message);
  });
  player.addEventListener(PlayerEventType.MUTED_CHANGED, function () {
    $('mute').textContent = player.isMuted() ? 'Unmute' : 'Mute';
  });

  $('quality').addEventListener('change', function (e) {
    var name = e.target.value;
    if (name === 'auto') { player.setAutoQualityMode(true); return; }
    var q = player.getQualities().filter(function (q) { return q.name === name; })[0];
    if (q) player.setQuality(q);
  });
  $('toggle').addEventListener('click', function () {
    var s = player.getState();
    if (s === PlayerState.PLAYING || s === PlayerState.BUFFERING) player.pause(); else player.play();
  });
  $('mute').addEventListener('click', function () { player.setMuted(!player.isMuted()); });

  setInterval(function () {
    var l = player.getLiveLatency();
    $('latency').textContent = l > 0 ? l.toFixed(2) + ' s' : '–';
    $('buffer').textContent = player.getBufferDuration().toFixed(2) + ' s';
  }, 250);

  player.setMuted(true); // muted autoplay is allowed everywhere
  player.setAutoplay(true);
  player.load(url);
  player.play();
})();
