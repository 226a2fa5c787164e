// Start Swagger UI on /docs from a file, not an inline script, so the page's CSP holds.
/* global SwaggerUIBundle, SwaggerUIStandalonePreset */
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.specUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null, // no request to validator.swagger.io
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "BaseLayout",
});
