// Placeholder until the CLI lands in this same issue.
console.log("z2m-ha: not yet");
