// Stands in for evaluate.js: exits 0 but prints something that is not a result.
process.stdout.write('this is not JSON\n');
