/* The typed-text box (lstmviz.app.live_text): the text goes to the server once typing
   pauses for PAUSE_MS, not at every key. */
(function () {
  var PAUSE_MS = 300;
  var timers = {};
  function whenTypingPauses(value, target) {
    clearTimeout(timers[target]);
    timers[target] = setTimeout(function () {
      window.dash_clientside.set_props(target, {data: value || ""});
    }, PAUSE_MS);
    return window.dash_clientside.no_update;
  }
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    lstmvizLive: { whenTypingPauses: whenTypingPauses }
  });
})();
