// Stands in for evaluate.js: never finishes, so the caller's timeout must.
setInterval(() => {}, 1000);
