// Asks before destructive console actions (kill, dismiss, drain). Forms still work without JS.
export function initConfirm(): void {
  document.addEventListener('submit', (e) => {
    const form = e.target as HTMLFormElement | null;
    const question = form?.dataset.confirm;
    if (question && !window.confirm(question)) e.preventDefault();
  });
}
