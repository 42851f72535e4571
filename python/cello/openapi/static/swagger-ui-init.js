// Starts Swagger UI from the JSON configuration its page embeds
// (cello/openapi/pages.py), so the page needs no inline script.
(function () {
  "use strict";
  var element = document.getElementById("cello-openapi-config");
  var config = JSON.parse(element.textContent);
  var options = Object.assign({}, config.parameters, {
    url: config.url,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
  window.ui = SwaggerUIBundle(options);
})();
