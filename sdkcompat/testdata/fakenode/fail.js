// Stands in for evaluate.js: fails the way a broken SDK run would.
process.stderr.write('evaluate.js: error: simulated failure for the test\n');
process.exit(1);
