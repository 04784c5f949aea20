/**
 * A confirmation dialog (the native <dialog>: focus moves into it, Escape cancels). Every admin
 * action that changes a job asks first.
 */
import { useEffect, useRef } from 'preact/hooks';

export interface ConfirmRequest {
  title: string;
  text: string;
  confirm: string;
  onConfirm(): void;
}

export function ConfirmDialog({ request, onClose }: { request: ConfirmRequest | null; onClose(): void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (request && !dialog.open) dialog.showModal();
    if (!request && dialog.open) dialog.close();
  }, [request]);
  return (
    <dialog ref={ref} aria-labelledby="confirm-title" onClose={onClose} onCancel={onClose}>
      {request && (
        <>
          <h2 id="confirm-title">{request.title}</h2>
          <p>{request.text}</p>
          <div class="buttons">
            <button type="button" class="secondary" onClick={onClose} autofocus>
              Keep it
            </button>
            <button
              type="button"
              class="danger"
              onClick={() => {
                request.onConfirm();
                onClose();
              }}
            >
              {request.confirm}
            </button>
          </div>
        </>
      )}
    </dialog>
  );
}
