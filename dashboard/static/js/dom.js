// Building DOM nodes. Text goes in through textContent only, so nothing a user typed is ever parsed as HTML.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") {
      node.textContent = value;
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else if (value !== false && value !== null && value !== undefined) {
      node.setAttribute(name, String(value));
    }
  }
  node.append(...children);
  return node;
}

export function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) {
    node.textContent = value;
  }
}

// A link only for http(s) URLs; anything else (javascript:, data:) is shown as plain text.
export function safeLink(url) {
  if (/^https?:\/\//i.test(url || "")) {
    return el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: url });
  }
  return el("span", { text: url || "–" });
}

export function show(node, visible) {
  node.hidden = !visible;
}
