// Progressive enhancement only: every page works without this file.
// 1. GOV.UK Frontend's components (when the package is served), 2. live news of new notifications.
document.body.classList.add('govuk-frontend-supported', 'js-enabled');

const prefix = '/web';
import(prefix + '/govuk/govuk-frontend.min.js')
  .then((govuk) => govuk.initAll())
  .catch(() => { /* not installed: the pages are plain HTML */ });

const live = document.getElementById('live-updates');
if (live && window.EventSource) {
  const source = new EventSource(live.dataset.stream);
  let unseen = 0;
  source.addEventListener('notification', (event) => {
    const info = JSON.parse(event.data);
    unseen += info.new;
    live.textContent = '';
    const text = document.createElement('p');
    text.className = 'govuk-body govuk-!-margin-bottom-0';
    const strong = document.createElement('strong');
    strong.textContent = unseen === 1 ? '1 new notification. ' : unseen + ' new notifications. ';
    const link = document.createElement('a');
    link.className = 'govuk-link';
    link.href = window.location.pathname + window.location.search;
    link.textContent = 'Show the newest';
    text.append(strong, link);
    live.append(text);
    document.title = '(' + unseen + ') ' + document.title.replace(/^\(\d+\) /, '');
  });
}
