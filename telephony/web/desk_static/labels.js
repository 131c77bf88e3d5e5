// The desk's words in the deployment's language: the server puts prompts/<lang>/desk.yaml into the page as a JSON
// data block; every script takes its labels from here, so no label is written in a script.
"use strict";

window.deskText = (() => {
  const labels = JSON.parse(document.getElementById("desk-labels").textContent);
  // deskText("open_call", { call: "CA12" }) -> "Open call CA12"; an unknown name is a bug, so it fails loudly.
  return (name, values = {}) => {
    const text = labels[name];
    if (text === undefined) throw new Error(`no desk label ${name}`);
    return text.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? String(values[key]) : whole));
  };
})();
