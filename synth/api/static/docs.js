// Starts Swagger UI on /openapi.json; a file, not an inline script, so the page's CSP needs no 'unsafe-inline'.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
