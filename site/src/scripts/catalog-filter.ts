// Instant search + category filtering over the server-rendered cards; keeps the URL shareable.
export function initCatalogFilter(): void {
  const root = document.querySelector<HTMLElement>('[data-catalog]');
  if (!root) return;
  const input = root.querySelector<HTMLInputElement>('[data-search]');
  const form = root.querySelector<HTMLFormElement>('[data-search-form]');
  const pills = [...root.querySelectorAll<HTMLAnchorElement>('[data-pill]')];
  const cards = [...root.querySelectorAll<HTMLElement>('[data-card]')];
  const countEl = root.querySelector<HTMLElement>('[data-result-count]');
  const none = root.querySelector<HTMLElement>('[data-no-results]');
  let category = pills.find((p) => p.getAttribute('aria-current') === 'true')?.dataset.pill ?? '';

  const apply = () => {
    const needle = (input?.value ?? '').trim().toLowerCase();
    let shown = 0;
    for (const card of cards) {
      const ok =
        (!category || card.dataset.category === category) &&
        (!needle || (card.dataset.text ?? '').includes(needle));
      card.hidden = !ok;
      if (ok) shown++;
    }
    for (const p of pills) {
      if ((p.dataset.pill ?? '') === category) p.setAttribute('aria-current', 'true');
      else p.removeAttribute('aria-current');
    }
    if (countEl) countEl.textContent = `${shown} of ${cards.length} agents`;
    if (none) none.hidden = shown > 0;
    const params = new URLSearchParams();
    if (needle) params.set('q', input?.value.trim() ?? '');
    if (category) params.set('category', category);
    const qs = params.toString();
    history.replaceState(null, '', qs ? `/?${qs}` : '/');
  };

  input?.addEventListener('input', apply);
  form?.addEventListener('submit', (e) => {
    e.preventDefault();
    apply();
  });
  form?.querySelector('[data-category-input]')?.remove();
  for (const p of pills) {
    p.addEventListener('click', (e) => {
      e.preventDefault();
      category = p.dataset.pill ?? '';
      apply();
    });
  }
}
