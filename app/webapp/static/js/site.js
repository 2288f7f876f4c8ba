// Served by nginx from app/webapp/static with Cache-Control: immutable.
document.documentElement.dataset.ready = "true";
