// The Next.js dashboard lands with the dashboard issue; until then this package only reports that.
console.log('headbench web: the dashboard is not built yet (see the Dashboard issue).');
