// Starts ReDoc from the JSON configuration its page embeds
// (cello/openapi/pages.py), so the page needs no inline script.
(function () {
  "use strict";
  var element = document.getElementById("cello-openapi-config");
  var config = JSON.parse(element.textContent);
  Redoc.init(config.url, config.options, document.getElementById("redoc-container"));
})();
