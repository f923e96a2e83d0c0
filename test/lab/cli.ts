console.log("lab: not yet");
