// HTTP helpers: every call answers parsed JSON or throws an Error whose
// message is the server's own `error` text when it sent one.

async function call(method, url, body) {
  const init = { method, headers: { Accept: 'application/json' }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url, init);
  let data = null;
  try {
    data = await res.json();
  } catch {
    // A proxy's HTML error page, or an empty body: fall through to the status.
  }
  if (!res.ok) {
    const err = new Error((data && data.error) || `${res.status} ${res.statusText}`);
    err.status = res.status;
    throw err;
  }
  return data;
}

export const getJSON = (url) => call('GET', url);
export const postJSON = (url, body) => call('POST', url, body);
export const del = (url) => call('DELETE', url);
