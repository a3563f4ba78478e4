// Sign-in for the staff pages (/console, /supervisor): the form of
// input[name=username] + input[name=password] + submit, POST /api/login, and
// the short-lived staff token kept in sessionStorage (gone with the tab).

import { TsunaguClient, login } from "/static/common/tsunagu-client.js";
import { setBilingual } from "/static/common/tsunagu-ui.js";


/**
 * Wire the sign-in form and return a started client once signed in.
 * @param {object} opts
 * @param {string} opts.page           "console" | "supervisor" (storage keys)
 * @param {string[]} opts.roles        roles allowed on this page
 * @param {(client: TsunaguClient) => void} opts.onClient  called with the started client
 * @param {(key: string) => {ja: string, en: string}} opts.t  the page's text table, with
 *   login.bad, login.role, login.down, login.expired, login.empty
 * @param {() => void} [opts.onGesture]  called inside the submit click (e.g. to unlock audio)
 */
// The sign-in sentences both staff pages share (each adds its own "login.title").
export const LOGIN_TEXT = {
  "login.username": { ja: "ユーザー名", en: "Username" },
  "login.password": { ja: "パスワード", en: "Password" },
  "login.submit": { ja: "サインイン", en: "Sign in" },
  "login.bad": { ja: "ユーザー名またはパスワードが違います。", en: "Wrong username or password." },
  "login.role": { ja: "このアカウントではこの画面を使えません。", en: "This account cannot use this page." },
  "login.down": { ja: "サーバーにつながりません。少し待ってから、もう一度お試しください。", en: "Cannot reach the server. Wait a moment and try again." },
  "login.expired": { ja: "サインインの期限が切れました。もう一度サインインしてください。", en: "Your sign-in has expired. Please sign in again." },
  "login.empty": { ja: "ユーザー名とパスワードを入れてください。", en: "Enter your username and password." },
};

export function startStaffSession({ page, roles, onClient, onGesture, t }) {
  const tokenKey = `tsunagu.${page}.token`;
  const form = document.getElementById("login");
  const errorEl = document.getElementById("login-error");
  const root = document.documentElement;
  let client = null;

  const readToken = () => {
    try { return sessionStorage.getItem(tokenKey); } catch { return null; }
  };
  const showError = (key) => {
    setBilingual(errorEl, t(`login.${key}`));
    errorEl.hidden = false;
  };

  const begin = () => {
    root.dataset.signedIn = "";
    client = new TsunaguClient({ token: readToken, sessionKey: `tsunagu.${page}.session` });
    client.on("unauthorized", () => signOut("expired"));
    onClient(client);
    client.start();
  };

  const signOut = (reason) => {
    if (client) client.stop();
    client = null;
    try { sessionStorage.removeItem(tokenKey); } catch { /* storage off */ }
    delete root.dataset.signedIn;
    delete root.dataset.state;
    if (reason) showError(reason); else errorEl.hidden = true;
    form.elements.password.value = "";
    form.elements.username.focus();
    document.dispatchEvent(new CustomEvent("tsunagu:signed-out"));
  };

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (onGesture) onGesture();
    const username = form.elements.username.value.trim();
    const password = form.elements.password.value;
    if (!username || !password) { showError("empty"); return; }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const reply = await login(username, password);
      if (!roles.includes(reply.role)) { showError("role"); return; }
      try { sessionStorage.setItem(tokenKey, reply.token); } catch { /* storage off */ }
      errorEl.hidden = true;
      form.elements.password.value = "";
      begin();
    } catch (err) {
      showError(err.code === "unauthorized" ? "bad" : "down");
      form.elements.password.select();
    } finally {
      submit.disabled = false;
    }
  });

  if (readToken()) begin();
  else form.elements.username.focus();

  return { signOut: () => signOut(null) };
}
