// Starts Swagger UI on the API's own document. Kept out of the page so the
// Content-Security-Policy can forbid inline scripts. URLs are relative to the
// page (/api/v1/docs), so the page also works behind a path prefix.
"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", window.location.href).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // Never send the document to the public validator (and no badge): the
    // page talks to this origin only.
    validatorUrl: null,
    displayRequestDuration: true,
    persistAuthorization: false,
    tryItOutEnabled: false,
  });
});
