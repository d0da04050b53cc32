"""Server-rendered pages (Jinja2), static assets, and the HTML face of errors."""
