import type { ComponentChildren } from "preact";
import { useEffect, useId, useRef } from "preact/hooks";

/**
 * A modal confirmation on the native <dialog>: the browser traps focus in it, Escape cancels,
 * and focus returns to the control that opened it. The safe choice has the initial focus.
 */
export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  busy: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const cancel = useRef<HTMLButtonElement>(null);
  const titleId = useId();
  const bodyId = useId();

  useEffect(() => {
    const element = dialog.current;
    if (element === null) return;
    if (props.open && !element.open) {
      element.showModal();
      cancel.current?.focus();
    } else if (!props.open && element.open) {
      element.close();
    }
  }, [props.open]);

  return (
    <dialog
      ref={dialog}
      class="dialog"
      aria-labelledby={titleId}
      aria-describedby={bodyId}
      onCancel={(event) => {
        event.preventDefault();
        if (!props.busy) props.onCancel();
      }}
    >
      <h2 id={titleId}>{props.title}</h2>
      {/* Only while open: a closed dialog's words would read as part of the page around it. */}
      <div id={bodyId}>{props.open ? props.children : null}</div>
      <div class="actions">
        <button type="button" class="button-danger" disabled={props.busy} onClick={props.onConfirm}>
          {props.busy ? "Deleting…" : props.confirmLabel}
        </button>
        <button type="button" ref={cancel} class="button-secondary" disabled={props.busy} onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </dialog>
  );
}
